"""The latent demand model of the synthetic data set: per-modality latent scores, the exact expected target and a draw.

Latent score (logit scale) s = table + text + photo_quality + photo_content, each a function of observed fields:
- table: category, param group, user_type, price relative to its item group's median (cheaper sells), zero/missing
  price, item_seq_number, region, city, a per-user effect, no photo;
- text: the condition, urgency and bargaining sentences actually written, the description's length, no description;
- photo_quality: blur, dark or washed-out exposure, near-blank picture (seen only in the pixels);
- photo_content: what the photo shows (its image_top_1 code, drawn as object colour/shape/scene).
The target is zero-inflated: 1 with p1 = sigmoid(A_ONE + 0.5 s + 2 [price missing]); otherwise non-zero with
q = sigmoid(A_NONZERO + s), and then a "high" value with h = sigmoid(A_HIGH + 0.7 s) or a "low" one. A value is
sigmoid(mu + sd * e_j) for one of K equiprobable standard-normal nodes e_j, snapped to the category's grid of
5-decimal values. So E[y | features] = p1 + (1 - p1) q (h mean_j H_j + (1 - h) mean_j L_j), computed exactly.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from demandnet.data.synthetic_world import World

K_NODES = 16
NODES = np.array([NormalDist().inv_cdf((j + 0.5) / K_NODES) for j in range(K_NODES)])
A_ONE, A_NONZERO, A_HIGH = -5.35, -0.25, -1.0
LOW_MU, LOW_SLOPE, LOW_SD = -1.6, 0.35, 0.65
HIGH_MU, HIGH_SLOPE, HIGH_SD = 1.45, 0.25, 0.5
USER_TYPE_EFFECT = np.array([0.0, -0.37, -1.02])
COND_EFFECT = np.array([0.0, 0.45, 0.35, 0.10, -0.35, -1.0])  # none, new, excellent, good, worn, broken
HAGGLE_EFFECT = np.array([0.0, 0.2, -0.25])  # nothing said, bargaining welcome, firm price
BLUR_EFFECT = np.array([0.0, -0.25, -0.6])
EXPOSURE_EFFECT = np.array([0.0, -0.45, -0.35])  # normal, dark, washed out
BLANK_EFFECT = -1.0
COMPONENTS = ("table", "text", "photo_quality", "photo_content")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def latents(
    world: World, rows: dict[str, np.ndarray], shown: dict[str, np.ndarray], sl: slice
) -> dict[str, np.ndarray]:
    """The four latent components of rows[sl]; `shown` holds the chunk's observed text signals."""
    r = {k: v[sl] for k, v in rows.items()}
    table = (
        world.cat_effect[r["category"]]
        + world.leaf_effect[r["leaf"]] * ~r["p1_missing"]
        + USER_TYPE_EFFECT[r["user_type"]]
        - 0.3 * np.clip(r["price_rel"], -3, 3)
        + 0.6 * r["price_zero"]
        + 0.6 * r["price_missing"]
        - 0.1 * np.clip(np.log(r["seq"] / 29.0), -3, 3)
        + world.region_effect[r["region"]]
        + world.city_effect[r["city"]]
        + r["user_effect"]
        - 0.3 * ~r["has_image"]
    )
    chars = np.maximum(shown["desc_chars"], 1)
    text = (
        COND_EFFECT[shown["cond_shown"]]
        + 0.35 * shown["urgent_shown"]
        + HAGGLE_EFFECT[shown["haggle_shown"]]
        + np.where(r["desc_missing"], -0.65, 0.3 * np.clip(np.log(chars / 100.0), -2.5, 2.5))
    )
    quality = np.where(r["blank"], BLANK_EFFECT, BLUR_EFFECT[r["blur"]] + EXPOSURE_EFFECT[r["exposure"]])
    return {
        "table": table,
        "text": text,
        "photo_quality": quality * r["has_image"],
        "photo_content": world.code_effect[r["code"]] * (r["has_image"] & ~r["blank"]),
    }


def _snap(grids: list[np.ndarray], cat: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each value (n, K) replaced by the nearest point of its row's category grid."""
    out = np.empty_like(values)
    for k in np.unique(cat):
        rows, grid = cat == k, grids[k]
        v = values[rows]
        i = np.clip(np.searchsorted(grid, v), 1, len(grid) - 1)
        lo, hi = grid[i - 1], grid[i]
        out[rows] = np.where(v - lo <= hi - v, lo, hi)
    return out


def outcome_model(world: World, s: np.ndarray, cat: np.ndarray, price_missing: np.ndarray) -> dict[str, np.ndarray]:
    """Probabilities of the exact 1 / non-zero / high branches and the snapped values at every node."""
    return {
        "p_one": _sigmoid(A_ONE + 0.5 * s + 1.7 * price_missing),
        "q": _sigmoid(A_NONZERO + 1.15 * s),
        "h": _sigmoid(A_HIGH + 0.8 * s),
        "low": _snap(world.grids, cat, _sigmoid(LOW_MU + LOW_SLOPE * s[:, None] + LOW_SD * NODES)),
        "high": _snap(world.grids, cat, _sigmoid(HIGH_MU + HIGH_SLOPE * s[:, None] + HIGH_SD * NODES)),
    }


def expected(m: dict[str, np.ndarray]) -> np.ndarray:
    """E[deal_probability | features], exact over the one/zero/high/low/node draws."""
    value = m["h"] * m["high"].mean(axis=1) + (1 - m["h"]) * m["low"].mean(axis=1)
    return m["p_one"] + (1 - m["p_one"]) * m["q"] * value


def draw(rng: np.random.Generator, m: dict[str, np.ndarray]) -> np.ndarray:
    """One target per row from the outcome model, rounded to 5 decimals like the competition's values."""
    n = len(m["q"])
    u = rng.random((n, 3))
    node = rng.integers(0, K_NODES, n)
    value = np.where(u[:, 2] < m["h"], m["high"][np.arange(n), node], m["low"][np.arange(n), node])
    y = np.where(u[:, 0] < m["p_one"], 1.0, np.where(u[:, 1] < m["q"], value, 0.0))
    return np.round(y, 5)
