"""The fixed "world" of the synthetic Avito generator: value tables and latent effects shared by every data set.

Everything here is derived from `demandnet/resources/avito_vocab.json` and a constant world seed, never from the
data seed, so data sets generated with different seeds or sizes describe the same market (same category effects,
same image_top_1 codes, same value grids).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

WORLD_SEED = 20180425
N_CODES = 3067  # image_top_1 takes values 0..3066
N_BLANK_CODES = 3  # codes a content classifier gives to near-blank photos, shared by all categories
KINDS = ("goods", "realty", "car", "animal", "service")


def load_vocab() -> dict:
    """The curated value names and word lists (a package resource, so it works without /work/shared)."""
    text = resources.files("demandnet").joinpath("resources/avito_vocab.json").read_text(encoding="utf-8")
    return json.loads(text)


@dataclass(frozen=True)
class Leaves:
    """All (param_1, param_2, param_3) paths of all categories, flattened; "" means missing."""

    cat: np.ndarray  # (L,) category index of each leaf
    p1: list[str]
    p2: list[str]
    p3: list[str]
    prob: np.ndarray  # (L,) probability of the leaf within its category
    price_log10: np.ndarray  # (L,) median log10 price of the leaf's item group
    start: np.ndarray  # (K + 1,) leaves of category k are start[k]:start[k+1]


@dataclass(frozen=True)
class World:
    vocab: dict
    categories: list[dict]
    cat_share: np.ndarray  # (K,) row share of each category
    cat_effect: np.ndarray  # (K,) latent logit effect of the category
    cat_kind: np.ndarray  # (K,) index into KINDS
    leaves: Leaves
    leaf_effect: np.ndarray  # (L,) latent logit effect of the item group (param_1/2/3 path)
    region_share: np.ndarray  # (R,)
    region_effect: np.ndarray  # (R,)
    city_names: list[str]  # (C,) all cities, grouped by region
    city_region: np.ndarray  # (C,) region index
    city_prob: np.ndarray  # (C,) probability of the city within its region (capital first, heavy head)
    city_effect: np.ndarray  # (C,)
    code_start: np.ndarray  # (K + 1,) positions in code_ids of each category's content codes
    code_ids: np.ndarray  # (N_CODES - N_BLANK_CODES,) image_top_1 values, grouped by category
    code_prob: np.ndarray  # same shape: probability of the code within its category
    blank_codes: np.ndarray  # (N_BLANK_CODES,)
    code_colour: np.ndarray  # (N_CODES,) colour index into vocab["text"]["colours"]
    code_variant: np.ndarray  # (N_CODES,) 0..3, proportions of the drawn object
    code_background: np.ndarray  # (N_CODES,) 0..3, scene kind
    code_effect: np.ndarray  # (N_CODES,) latent logit effect of what the photo shows
    grids: list[np.ndarray]  # per category: sorted 5-decimal values that non-zero targets snap to


def _flatten(tree: dict, prefix: tuple[str, ...], prob: float, out: list) -> None:
    """Depth-first walk of a param tree: a value maps to a weight (leaf) or to [weight, subtree]."""
    total = sum(v[0] if isinstance(v, list) else v for v in tree.values())
    for name, node in tree.items():
        weight, sub = (node[0], node[1]) if isinstance(node, list) else (node, None)
        if sub:
            _flatten(sub, prefix + (name,), prob * weight / total, out)
        else:
            out.append((prefix + (name,), prob * weight / total))


def _leaves(categories: list[dict]) -> Leaves:
    cat, p1, p2, p3, prob, price, start = [], [], [], [], [], [], [0]
    for k, c in enumerate(categories):
        paths: list = []
        _flatten(c["params"], (), 1.0, paths) if c["params"] else paths.append(((), 1.0))
        by = c.get("price_by", {})
        for path, p in paths:
            names = list(path) + [""] * (3 - len(path))
            cat.append(k)
            p1.append(names[0])
            p2.append(names[1])
            p3.append(names[2])
            prob.append(p)
            # the most specific param value with its own price level wins (e.g. Сдам -> Посуточно)
            price.append(next((by[v] for v in reversed(names) if v in by), c["price"][0]))
        start.append(len(cat))
    return Leaves(np.array(cat), p1, p2, p3, np.array(prob), np.array(price), np.array(start))


def _codes(rng: np.random.Generator, share: np.ndarray) -> tuple[np.ndarray, ...]:
    """Split the 3067 image_top_1 codes into per-category blocks (bigger categories get more codes)."""
    ids = rng.permutation(N_CODES)
    blank, ids = ids[:N_BLANK_CODES], ids[N_BLANK_CODES:]
    raw = np.maximum(6, share**0.6 / (share**0.6).sum() * len(ids))
    counts = np.floor(raw / raw.sum() * len(ids)).astype(int)
    counts[np.argmax(counts)] += len(ids) - counts.sum()
    start = np.concatenate([[0], np.cumsum(counts)])
    prob = np.empty(len(ids))
    for k in range(len(share)):
        z = 1.0 / (np.arange(counts[k]) + 3.0) ** 0.9  # a few common looks per category, a long tail of rare ones
        prob[start[k] : start[k + 1]] = rng.permutation(z / z.sum())
    return start, ids, prob, blank


@lru_cache(maxsize=1)
def get_world() -> World:
    """Build (once per process) the fixed world from the vocab and WORLD_SEED."""
    vocab = load_vocab()
    rng = np.random.default_rng(WORLD_SEED)
    cats = vocab["categories"]
    share = np.array([c["share"] for c in cats], dtype=float)
    share /= share.sum()
    regions = vocab["regions"]
    region_share = np.array([r["share"] for r in regions], dtype=float)
    region_share /= region_share.sum()
    city_names, city_region, city_prob = [], [], []
    for r, reg in enumerate(regions):
        z = 1.0 / np.arange(1, len(reg["cities"]) + 1) ** 1.3
        z[0] *= 1.6  # the regional capital holds about half of the region's ads
        city_names += reg["cities"]
        city_region += [r] * len(reg["cities"])
        city_prob += list(z / z.sum())
    code_start, code_ids, code_prob, blank = _codes(rng, share)
    leaves = _leaves(cats)
    n_colours = len(vocab["text"]["colours"])
    grids = []
    for s in share:
        size = int(120 + 1000 * np.sqrt(s / share.max()))  # ~18k distinct values in all, as in train
        grids.append(np.unique(np.round(rng.uniform(1e-5, 1 - 1e-5, size), 5)))
    return World(
        vocab=vocab,
        categories=cats,
        cat_share=share,
        cat_effect=np.array([c["effect"] for c in cats], dtype=float),
        cat_kind=np.array([KINDS.index(c["kind"]) for c in cats]),
        leaves=leaves,
        leaf_effect=rng.normal(0.0, 0.15, len(leaves.cat)),
        region_share=region_share,
        region_effect=rng.normal(0.0, 0.08, len(regions)),
        city_names=city_names,
        city_region=np.array(city_region),
        city_prob=np.array(city_prob),
        city_effect=rng.normal(0.0, 0.1, len(city_names)),
        code_start=code_start,
        code_ids=code_ids,
        code_prob=code_prob,
        blank_codes=blank,
        code_colour=rng.integers(0, n_colours, N_CODES),
        code_variant=rng.integers(0, 4, N_CODES),
        code_background=rng.integers(0, 4, N_CODES),
        code_effect=rng.normal(0.0, 0.3, N_CODES),
        grids=grids,
    )
