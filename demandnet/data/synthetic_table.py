"""Vectorised draw of the table fields and of the per-row latent states (text and photo) of a synthetic data set.

One numpy Generator seeded by the data seed draws every row at once (train rows first, then test rows), so the
result depends only on (seed, n_train, n_test). Shares follow docs/avito-facts.md (sections 4-7, 9).
"""

from __future__ import annotations

import numpy as np

from demandnet.data.synthetic_world import KINDS, World

USER_TYPES = ("Private", "Company", "Shop")
TRAIN_DAY_WEIGHTS = [6.0, 6.5, 7.0, 7.0, 7.2, 7.7, 7.5, 7.2, 7.0, 7.0, 7.2, 7.0, 6.5, 6.0]  # 2017-03-15..03-28
TRAIN_LATE_DAYS = 10  # 2017-03-29..04-07: single-digit counts in 1.5M rows
TEST_DAY_WEIGHTS = [16.0, 12.0, 12.0, 11.0, 10.0, 11.0, 11.0, 9.0, 8.0]  # 2017-04-12..04-20
TEST_FIRST_DAY = 28  # days after 2017-03-15
IMAGE_SIZES = [(480, 360), (360, 480), (360, 360), (480, 480), (270, 480), (320, 480), (480, 320), (358, 480)]
IMAGE_SIZE_PROB = [0.38, 0.30, 0.15, 0.03, 0.04, 0.04, 0.03, 0.03]
# condition states: 0 none, 1 new, 2 excellent, 3 good, 4 worn, 5 broken; probabilities per kind of ad (KINDS order)
CONDITION_PROB = np.array(
    [
        [0.28, 0.10, 0.20, 0.26, 0.10, 0.06],
        [0.45, 0.08, 0.17, 0.15, 0.10, 0.05],
        [0.38, 0.00, 0.25, 0.22, 0.10, 0.05],
        [0.50, 0.00, 0.20, 0.22, 0.05, 0.03],
        [0.50, 0.00, 0.25, 0.25, 0.00, 0.00],
    ]
)


def _pick(rng: np.random.Generator, prob: np.ndarray, n: int) -> np.ndarray:
    """n draws from a discrete distribution (inverse CDF, faster than choice for big n)."""
    return np.minimum(np.searchsorted(np.cumsum(prob), rng.random(n) * prob.sum()), len(prob) - 1)


def _grouped_pick(rng: np.random.Generator, group: np.ndarray, start: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """For each row, a position in start[g]:start[g+1] drawn with prob normalised within the group g."""
    out = np.empty(len(group), dtype=np.int64)
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        out[rows] = start[g] + _pick(rng, prob[start[g] : start[g + 1]], len(rows))
    return out


def _unique_ints(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct random 48-bit integers (12 hex digits), in random order."""
    ids = np.unique(rng.integers(0, 2**48, n + 64))
    while len(ids) < n:  # practically never: 64 spares against ~n^2 / 2^49 collisions
        ids = np.unique(np.concatenate([ids, rng.integers(0, 2**48, 64)]))
    return rng.permutation(ids[:n])


def _users(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Ads per user are discrete-Pareto (mean ~2, a few heavy sellers); returns row -> user and ads per user."""
    cap = max(4, int(0.0008 * n))
    counts = np.minimum(np.floor(rng.random(n) ** (-1 / 1.72)).astype(np.int64), cap)  # n users always suffice
    n_users = int(np.searchsorted(np.cumsum(counts), n)) + 1
    counts = counts[:n_users]
    counts[-1] -= counts.sum() - n
    return rng.permutation(np.repeat(np.arange(n_users), counts)), counts


def _seq(rng: np.random.Generator, user: np.ndarray, day: np.ndarray, utype: np.ndarray) -> np.ndarray:
    """item_seq_number: a log-normal base per user (bigger for Company/Shop) plus the ad's rank among the user's ads."""
    n_users = user.max() + 1
    median = np.array([14.0, 110.0, 240.0])
    user_type = np.zeros(n_users, dtype=np.int64)
    user_type[user] = utype
    base = np.exp(np.log(median[user_type]) + 1.35 * rng.standard_normal(n_users))
    order = np.lexsort((np.arange(len(user)), day, user))
    first = np.searchsorted(user[order], user[order])
    rank = np.empty(len(user), dtype=np.int64)
    rank[order] = np.arange(len(user)) - first
    return np.minimum(np.round(base[user]) + rank * (1 + rng.poisson(1.5, len(user))) + 1, 204_429).astype(np.int64)


def _prices(rng: np.random.Generator, world: World, cat: np.ndarray, leaf: np.ndarray) -> dict[str, np.ndarray]:
    n = len(cat)
    sigma = np.array([c["price"][1] for c in world.categories])[cat]
    median = world.leaves.price_log10[leaf]
    raw = 10 ** (median + sigma * rng.standard_normal(n))
    raw *= np.where(rng.random(n) < 0.0005, 10 ** rng.uniform(2, 4, n), 1.0)  # mistyped prices make the long tail
    digits = np.where(rng.random(n) < 0.75, 2, 3)
    scale = 10.0 ** np.maximum(np.floor(np.log10(raw)) - digits + 1, 1)  # prices are rounded: ~17k distinct values
    price = np.maximum(np.round(raw / scale) * scale, 10.0)
    is_animal = np.array([c["parent"] == "Животные" for c in world.categories])[cat]
    zero = rng.random(n) < np.where(is_animal, 0.04, 0.0022)
    services = np.array([c["kind"] == "service" for c in world.categories])[cat]
    missing = rng.random(n) < np.where(services, 0.30, 0.046)
    price = np.where(zero, 0.0, price)
    price[missing] = np.nan
    rel = np.where(missing | zero, 0.0, np.log(np.maximum(price, 1.0)) - median * np.log(10))
    return {"price": price, "price_missing": missing, "price_zero": zero & ~missing, "price_rel": rel}


def _image_state(rng: np.random.Generator, world: World, cat: np.ndarray, utype: np.ndarray) -> dict[str, np.ndarray]:
    n = len(cat)
    no_photo = np.where([c["kind"] == "service" for c in world.categories], 0.25, 0.069)
    no_photo[[c["kind"] == "realty" for c in world.categories]] = 0.05
    blank = rng.random(n) < 0.015
    code = world.code_ids[_grouped_pick(rng, cat, world.code_start, world.code_prob)]
    code = np.where(blank, world.blank_codes[rng.integers(0, len(world.blank_codes), n)], code)
    pro = utype > 0  # sellers with a business take sharper photos
    blur = _pick(rng, np.array([0.72, 0.16, 0.12]), n)
    blur = np.where(pro & (rng.random(n) < 0.5), 0, blur)
    size = _pick(rng, np.array(IMAGE_SIZE_PROB), n)
    return {
        "has_image": rng.random(n) >= no_photo[cat],
        "code": code,
        "blank": blank,
        "blur": blur,
        "exposure": _pick(rng, np.array([0.78, 0.11, 0.11]), n),
        "img_w": np.array([s[0] for s in IMAGE_SIZES])[size],
        "img_h": np.array([s[1] for s in IMAGE_SIZES])[size],
        "jpeg_q": rng.integers(78, 94, n),
        "noise": rng.uniform(2.0, 9.0, n),
        "watermark": rng.random(n) < 0.92,
        "image_hash": rng.integers(0, 2**64, (n, 4), dtype=np.uint64),
    }


def _text_state(
    rng: np.random.Generator, world: World, cat: np.ndarray, leaf: np.ndarray, utype: np.ndarray, is_test: np.ndarray
) -> dict[str, np.ndarray]:
    n = len(cat)
    kind = world.cat_kind[cat]
    cond = np.empty(n, dtype=np.int64)
    for k in range(len(KINDS)):
        rows = np.flatnonzero(kind == k)
        cond[rows] = _pick(rng, CONDITION_PROB[k], len(rows))
    new_car = np.array([p == "Новые" for p in world.leaves.p1])[leaf]
    cond[new_car] = 1
    pro = utype > 0
    length = np.exp(np.where(pro, np.log(260.0), np.log(75.0)) + np.where(pro, 1.0, 0.85) * rng.standard_normal(n))
    return {
        "cond": cond,
        "urgent": rng.random(n) < 0.08,
        "haggle": _pick(rng, np.array([0.78, 0.16, 0.06]), n),  # 0 nothing said, 1 bargaining welcome, 2 firm price
        "desc_missing": (rng.random(n) < 0.077) & ~is_test,
        "desc_len": np.clip(length, 8, 3000).astype(np.int64),
        "multiline": rng.random(n) < np.where(pro, 0.7, np.clip(length / 600, 0.05, 0.6)),
        "emoji": rng.random(n) < 0.01,
        "title_new": (cond == 1) & (rng.random(n) < 0.4),
        "title_urgent": rng.random(n) < 0.35,
        "ascii_yo": rng.random(n) < 0.9,  # most sellers type "е" for "ё"
    }


def draw_rows(world: World, n_train: int, n_test: int, seed: int) -> dict[str, np.ndarray]:
    """All table fields and latent states of n_train + n_test rows (train rows first) as numpy arrays."""
    rng = np.random.default_rng([seed, 1])
    n = n_train + n_test
    is_test = np.arange(n) >= n_train
    user, counts = _users(rng, n)
    n_users = len(counts)
    pro_prob = 1 / (1 + np.exp(-(-1.42 + 0.35 * np.log(counts))))  # heavy sellers are mostly businesses
    shop_prob = 1 / (1 + np.exp(-(-1.75 + 0.2 * np.log(counts))))
    user_type = np.where(rng.random(n_users) < pro_prob, np.where(rng.random(n_users) < shop_prob, 2, 1), 0)
    utype = user_type[user]
    home_cat = _pick(rng, world.cat_share, n_users)
    cat = np.where(rng.random(n) < np.where(utype > 0, 0.9, 0.45), home_cat[user], _pick(rng, world.cat_share, n))
    home_region = _pick(rng, world.region_share, n_users)
    city_start = np.searchsorted(world.city_region, np.arange(len(world.region_share) + 1))
    home_city = _grouped_pick(rng, home_region, city_start, world.city_prob)
    moved = rng.random(n) < 0.03  # most sellers post from their home city
    region = np.where(moved, _pick(rng, world.region_share, n), home_region[user])
    city = np.where(moved, _grouped_pick(rng, region, city_start, world.city_prob), home_city[user])
    leaf = _grouped_pick(rng, cat, world.leaves.start, world.leaves.prob)
    p1_gone = rng.random(n) < 0.007  # sellers who skip the sub-category
    day = np.where(
        is_test,
        TEST_FIRST_DAY + _pick(rng, np.array(TEST_DAY_WEIGHTS), n),
        np.where(
            rng.random(n) < 3e-5, 14 + rng.integers(0, TRAIN_LATE_DAYS, n), _pick(rng, np.array(TRAIN_DAY_WEIGHTS), n)
        ),
    )
    rows = {
        "is_test": is_test,
        "user": user,
        "user_type": utype,
        "user_effect": rng.normal(0.0, 0.3, n_users)[user],
        "user_hex": _unique_ints(rng, n_users)[user],
        "item_hex": _unique_ints(rng, n),
        "region": region,
        "city": city,
        "category": cat,
        "leaf": leaf,
        "p1_missing": p1_gone,
        "day": day,
        "seq": _seq(rng, user, day, utype),
    }
    rows.update(_prices(rng, world, cat, leaf))
    rows.update(_image_state(rng, world, cat, utype))
    rows.update(_text_state(rng, world, cat, leaf, utype, is_test))
    return rows
