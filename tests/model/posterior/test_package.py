"""The posterior package is the model's public face (issue 22): validation and the baselines reach the model only
through it, the checkpoint loader, the names of the priors it samples under and the inference protocol;
``model/__init__`` names every module."""
import ast
from pathlib import Path

import ysocensus

SRC = Path(ysocensus.__file__).parent
#: what code outside the model may import from it
PUBLIC = ("ysocensus.model.posterior", "ysocensus.model.checkpoint", "ysocensus.model.priors")


def _model_imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "ysocensus.model":
                out += [f"ysocensus.model.{a.name}" for a in node.names]
            elif node.module.startswith("ysocensus.model."):
                out.append(node.module)
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("ysocensus.model")]
    return out


def test_validation_and_baselines_use_only_the_public_posterior():
    bad = {}
    for pkg in ("validation", "baselines"):
        for path in sorted((SRC / pkg).glob("*.py")):
            private = [m for m in _model_imports(path) if not m.startswith(PUBLIC)]
            if private:
                bad[f"{pkg}/{path.name}"] = private
    assert not bad, f"imports of model internals: {bad}"


def test_model_init_lists_every_module():
    doc = (SRC / "model" / "__init__.py").read_text()
    modules = [p.stem for p in (SRC / "model").glob("*.py") if p.stem != "__init__"]
    modules += [p.name for p in (SRC / "model").iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    missing = [m for m in modules if f"``{m}``" not in doc]
    assert not missing, f"model/__init__.py does not describe {missing}"


def test_the_chain_names_its_corrections_in_order():
    from ysocensus.model.posterior.corrections import standard_chain, up_to
    from ysocensus.model.prior_ratio import FieldTilt, PriorRatio
    from ysocensus.model.recalibration import AgeCorrection

    ratio = PriorRatio([1.0, 50.0, 1000.0], tilt=FieldTilt(7.69897, 50.0, 1000.0, 0.22).to_dict())
    chain = standard_chain(ratio, AgeCorrection((7.0,), (0.1, 0.0)))
    assert [c.name for c in chain] == ["field_untilt", "population_ratio", "age_recalibration"]
    assert [c.name for c in up_to(chain, "simulation")] == ["field_untilt"]
    assert [c.name for c in standard_chain(PriorRatio([1.0]))] == ["population_ratio"]
    assert standard_chain(None) == ()


def test_the_structure_prior_is_the_untilt_then_the_young_structure_class():
    """``prior="structure"`` branches off the simulation chain: the field untilt, then log p(structure | θ, l, b), the
    classifier's log-probability of the smallest weight (the complete young structure; ``population.thinning``)."""
    import pytest
    import torch

    from ysocensus.model.posterior.corrections import MeanCorrection, StructureMembership, standard_chain, up_to
    from ysocensus.model.posterior.importance import log_weights
    from ysocensus.model.prior_ratio import FieldTilt, PriorRatio
    from ysocensus.model.recalibration import AgeCorrection

    torch.manual_seed(5)
    ratio = PriorRatio([10.0, 1.0, 50.0, 1000.0], tilt=FieldTilt(7.69897, 50.0, 1000.0, 0.22).to_dict(),
                       age_scale=(7.7, 0.5)).eval()
    chain = standard_chain(ratio, AgeCorrection((7.0,), (0.1, 0.0)))
    assert [c.name for c in up_to(chain, "structure")] == ["field_untilt", "structure_membership"]
    z, sky = torch.randn(6, 32, 5), torch.randn(6, 4)
    with torch.no_grad():
        want = ratio.log_untilt(z, sky[:, None, :]) + ratio.class_log_probs(z, sky[:, None, :])[..., 1]
    assert torch.allclose(log_weights(up_to(chain, "structure"), z, sky), want, atol=1e-6)
    consensus = up_to((MeanCorrection([chain[1], chain[1]]),), "structure")
    assert isinstance(consensus[-1], MeanCorrection) and consensus[-1].name == "structure_membership"
    with pytest.raises(ValueError, match="weight class"):
        StructureMembership(PriorRatio([1.0, 1.0, 1000.0]))
    with pytest.raises(ValueError, match="prior ratio"):
        up_to((), "structure")
    with pytest.raises(ValueError, match="structure"):
        up_to(chain, "members")


def test_untilt_then_population_ratio_is_the_tilted_ratio_exactly():
    """The chain's first two corrections split ``PriorRatio(tilted=True)`` into its two factors, bit for bit (the
    golden test pins the rest of the chain)."""
    import torch

    from ysocensus.model.posterior.corrections import FieldUntilt, PopulationRatio
    from ysocensus.model.posterior.importance import log_weights
    from ysocensus.model.prior_ratio import FieldTilt, PriorRatio

    torch.manual_seed(3)
    ratio = PriorRatio([1.0, 50.0, 1000.0], tilt=FieldTilt(7.69897, 50.0, 1000.0, 0.22).to_dict(),
                       age_scale=(7.7, 0.5)).eval()
    z = torch.randn(40, 64, 5)
    sky = torch.randn(40, 4)
    with torch.no_grad():
        tilted = ratio(z, sky[:, None, :], tilted=True)
    assert torch.equal(log_weights((FieldUntilt(ratio), PopulationRatio(ratio)), z, sky), tilted)
