"""Classifier two-sample test (C2ST) with an MLP, as in sbibm (Lueckmann et al. 2021).

``c2st(X, Y)`` z-scores both sets with the mean and standard deviation of ``X`` (the reference), trains an
MLP classifier (two hidden layers of 10·dim ReLU units, Adam) to tell X from Y and returns the mean
K-fold cross-validated accuracy: 0.5 when the two sets come from the same distribution, 1.0 when they are
disjoint. With scikit-learn installed this is sbibm's ``MLPClassifier`` code path exactly; without it, a
small torch MLP of the same shape stands in (same folds, same z-scoring).
"""

from __future__ import annotations

import numpy as np


def _folds(n: int, n_folds: int, rng: np.random.Generator):
    idx = rng.permutation(n)
    return np.array_split(idx, n_folds)


def _torch_mlp_accuracy(xtr, ytr, xte, yte, seed: int, epochs: int = 100) -> float:
    import torch

    g = torch.Generator().manual_seed(seed)
    d = xtr.shape[1]
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(d, 10 * d), torch.nn.ReLU(), torch.nn.Linear(10 * d, 10 * d),
                              torch.nn.ReLU(), torch.nn.Linear(10 * d, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    X = torch.as_tensor(xtr, dtype=torch.float32)
    Y = torch.as_tensor(ytr, dtype=torch.float32)
    n = len(X)
    bs = min(128, n)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, bs):
            b = perm[s:s + bs]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(X[b])[:, 0], Y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        pred = net(torch.as_tensor(xte, dtype=torch.float32))[:, 0].numpy() > 0
    return float((pred == (yte > 0.5)).mean())


def c2st(X: np.ndarray, Y: np.ndarray, seed: int = 1, n_folds: int = 5, z_score: bool = True,
         backend: str = "auto") -> float:
    """Mean cross-validated accuracy of an MLP telling ``X`` [n, d] from ``Y`` [m, d] (rows with NaN dropped)."""
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    X = X[np.isfinite(X).all(1)]
    Y = Y[np.isfinite(Y).all(1)]
    if len(X) < n_folds or len(Y) < n_folds:
        return float("nan")
    if z_score:
        mean, std = X.mean(0), X.std(0, ddof=1)
        std = np.where(std > 0, std, 1.0)
        X, Y = (X - mean) / std, (Y - mean) / std
    data = np.concatenate([X, Y])
    target = np.r_[np.zeros(len(X)), np.ones(len(Y))]
    ndim = X.shape[1]
    use_sklearn = backend == "sklearn"
    if backend == "auto":
        try:
            import sklearn  # noqa: F401
            use_sklearn = True
        except ImportError:
            use_sklearn = False
    if use_sklearn:
        from sklearn.model_selection import KFold, cross_val_score
        from sklearn.neural_network import MLPClassifier

        clf = MLPClassifier(activation="relu", hidden_layer_sizes=(10 * ndim, 10 * ndim), max_iter=10000,
                            solver="adam", random_state=seed)
        cv = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
        return float(np.mean(cross_val_score(clf, data, target, cv=cv, scoring="accuracy")))
    rng = np.random.default_rng(seed)
    scores = []
    folds = _folds(len(data), n_folds, rng)
    for k, te in enumerate(folds):
        tr = np.concatenate([f for j, f in enumerate(folds) if j != k])
        scores.append(_torch_mlp_accuracy(data[tr], target[tr], data[te], target[te], seed + k))
    return float(np.mean(scores))
