"""The population's sky figure (issue 23, point 9): it is written, with l/b labels and plain colour-bar ticks."""

from ysocensus import io
from ysocensus.galaxy import figure
from ysocensus.surveys.synthetic import synthetic_population


def test_sky_figure_is_written_with_readable_labels(tmp_path, isochrones, monkeypatch):
    pop = synthetic_population(isochrones, 3000)
    path = tmp_path / "chunk_0.parquet"
    io.write_table(pop, path, io.POPULATION)
    from ysocensus.maps import figures as mf

    shown = {}
    real_save = mf.save

    def keep(fig, out, dpi):
        shown["labels"] = [t.get_text() for ax in fig.axes for t in ax.texts + ax.get_xticklabels()]
        real_save(fig, out, dpi)

    monkeypatch.setattr(mf, "save", keep)
    summary = figure.sky_figure([str(path)], tmp_path / "sky.png", nside=1)
    assert (tmp_path / "sky.png").stat().st_size > 50_000 and summary["rows"] == 3000
    labels = [t for t in shown["labels"] if t]
    assert {"b = +30°", "0°", "120°"} <= set(labels)
    assert not [t for t in labels if "e+" in t or len(t.replace(",", "")) > 9 and t[0].isdigit()]
