"""Russian titles and descriptions of synthetic ads, built from demandnet's own templates and word lists.

The text carries latent signal only through what is written: a condition sentence (new ... broken), an urgency
sentence ("Срочно"), a bargaining sentence ("Торг уместен" / "Без торга") and the description's length. Fillers,
details and shop boilerplate carry none. `render_texts` reports which signals a row actually shows, so the target
model can depend on the observed text only.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

import numpy as np

from demandnet.data.synthetic_world import KINDS, World

CONDITIONS = ("none", "new", "excellent", "good", "worn", "broken")
GENDERS = "mfnp"
PREPOSITIONS = {"для", "на", "в", "с", "под", "от", "по"}
LAND = {"Поселений (ИЖС)": "ИЖС", "Сельхозназначения (СНТ, ДНП)": "СНТ, ДНП", "Промназначения": "промназначения"}
ABROAD = {"Квартира, апартаменты": "Квартира", "Дом, вилла": "Дом", "Земельный участок": "Участок"}
ROOM_AREA = {"Студия": (18, 30), "1": (28, 45), "2": (40, 65), "3": (55, 90), "4": (70, 120), "5": (90, 160)}
SERVICE_SUFFIX = ["недорого", "качественно", "быстро", "в срок", "круглосуточно"]
MAX_TITLE_CHARS, MAX_DESC_CHARS = 50, 3000
BRAND_BOOST = 1.8  # scales each category's p_brand (Latin letters in titles and descriptions)
SLOTS = {
    "cm": lambda r: r.integers(40, 181),
    "year": lambda r: r.integers(1960, 2017),
    "year2": lambda r: r.integers(2018, 2021),
    "km": lambda r: r.integers(20, 300),
    "engine": lambda r: r.choice(["1.4", "1.6", "1.8", "2.0", "2.5"]),
    "hp": lambda r: r.integers(70, 250),
    "kitchen": lambda r: r.integers(6, 13),
    "sot": lambda r: r.integers(4, 21),
    "months": lambda r: r.integers(2, 5),
    "gb": lambda r: r.choice([8, 16, 32, 64, 128]),
    "hours": lambda r: r.integers(6, 25),
    "inch": lambda r: r.choice([7, 10, 15, 17, 19, 24, 26, 32, 40, 43]),
    "n": lambda r: r.integers(2, 21),
    "w": lambda r: r.integers(40, 201),
    "h": lambda r: r.integers(40, 201),
    "kg": lambda r: r.integers(5, 11),
    "kw": lambda r: r.integers(1, 6),
    "ml": lambda r: r.choice([30, 50, 75, 100]),
    "g": lambda r: r.integers(2, 21),
    "ring": lambda r: r.integers(15, 21),
    "age": lambda r: r.integers(1, 7),
    "day": lambda r: r.integers(20, 31),
    "grade": lambda r: r.integers(1, 12),
    "l": lambda r: r.choice([20, 40, 60, 100, 200]),
    "m": lambda r: r.integers(2, 6),
    "t": lambda r: r.integers(1, 21),
    "cc": lambda r: r.choice([50, 110, 125, 250, 400, 650]),
    "i": lambda r: r.choice([3, 5, 7]),
    "ghz": lambda r: r.choice(["2.4", "3.0", "3.2", "3.6"]),
    "years": lambda r: r.integers(3, 26),
    "house": lambda r: r.integers(1, 120),
}


def _accusative(nom: str, gender: str) -> str:
    """Feminine nouns (and their adjectives) change in the accusative; words after a preposition stay as they are."""
    if gender != "f":
        return nom
    out, frozen = [], False
    for word in nom.split(" "):
        frozen = frozen or word in PREPOSITIONS
        if not frozen:
            word = re.sub(r"ая$", "ую", re.sub(r"яя$", "юю", word))
            word = re.sub(r"(?<=[^ую])а$", "у", re.sub(r"(?<=[^ю])я$", "ю", word))
        out.append(word)
    return " ".join(out)


def _noun(spec: str) -> tuple[str, str, int]:
    parts = spec.split("|")
    gender = parts[-1]
    acc = parts[1] if len(parts) == 3 else _accusative(parts[0], gender)
    return parts[0], acc, GENDERS.index(gender)


@lru_cache(maxsize=1)
def _nouns(categories: str) -> list[dict[str, list[tuple[str, str, int]]]]:
    """Parsed nouns per category and param value (cached on the JSON text of the categories)."""
    return [{key: [_noun(s) for s in specs] for key, specs in c["nouns"].items()} for c in json.loads(categories)]


class _Slots(dict):
    """Values for {slots} in detail sentences; a slot not fixed by the row is drawn when first used."""

    def __init__(self, rng: np.random.Generator, text: dict, **fixed: object) -> None:
        super().__init__(fixed)
        self.rng, self.text = rng, text

    def __missing__(self, key: str) -> object:
        r = self.rng
        value = {
            "site": lambda: r.choice(self.text["sites"]),
            "street": lambda: r.choice(self.text["streets"]),
            "size": lambda: r.choice(["42–44 (S)", "44–46 (M)", "46–48 (L)"]),
            "area": lambda: r.integers(20, 100),
            "floor": lambda: f"{r.integers(1, 6)}/{r.integers(5, 10)}",
        }.get(key, lambda: SLOTS[key](r))()
        self[key] = value
        return value


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _adjective(rng: np.random.Generator, text: dict, names: list[str], colour: int, gender: int) -> str:
    name = names[rng.integers(len(names))]
    name = text["colours"][colour] if name == "colour" else name
    return text["adjectives"][name][gender]


def _title(rng: np.random.Generator, world: World, cat: dict, row: dict, slots: _Slots) -> str:
    """One title in the style of its category (templates such as "2-к квартира, 45 м², 3/9 эт.")."""
    text, style, p1, p2, p3 = world.vocab["text"], cat["title"], row["p1"], row["p2"], row["p3"]
    nom, acc, g = row["noun"]
    brand = row["brand"]
    if style == "flat":
        lo, hi = ROOM_AREA.get(p2, (30, 60))
        slots["area"] = area = rng.integers(lo, hi + 1)
        floors = rng.choice([2, 3, 5, 9, 10, 12, 16, 17, 25])
        slots["floor"] = floor = f"{rng.integers(1, floors + 1)}/{floors}"
        head = "Квартира-студия" if p2 == "Студия" else f"{p2 or rng.integers(1, 4)}-к квартира"
        return f"{head}, {area} м², {floor} эт."
    if style == "room":
        slots["area"] = area = rng.integers(10, 26)
        return f"Комната {area} м², {slots['floor']} эт."
    if style == "house":
        slots["area"] = area = int(np.exp(rng.uniform(np.log(30), np.log(300))))
        return f"{p2 or 'Дом'} {area} м², участок {slots['sot']} сот."
    if style == "land":
        return f"Участок {slots['sot']} сот." + (f" ({LAND[p2]})" if p2 in LAND else "")
    if style == "garage":
        slots["area"] = area = rng.integers(12, 20) if p2 == "Машиноместо" else rng.integers(15, 40)
        return f"{p2 or 'Гараж'}, " + ("> 30 м²" if area > 30 else f"{area} м²")
    if style == "commercial":
        slots["area"] = area = int(np.exp(rng.uniform(np.log(20), np.log(1000))))
        return f"{p2 or 'Помещение'}, {area} м²"
    if style == "abroad":
        slots["area"] = area = rng.integers(30, 200)
        return f"{ABROAD.get(p2, 'Квартира')}, {area} м²" + (f" ({p3})" if p3 else "")
    if style == "car":
        slots["year"] = year = 2017 - min(int(rng.exponential(8)), 30) if p1 != "Новые" else 2017
        return f"{re.sub(r' [(].*[)]', '', p2)} {p3}, {year}" if p2 else f"{_cap(nom)}, {year}"
    if style == "service":
        titles = cat["titles"]
        words = str(rng.choice(titles.get(p2) or titles.get(p1) or titles[""])).split()
    elif style == "phone" and p1 in cat["models"]:
        words = [p1, str(rng.choice(cat["models"][p1]))]
        words = (
            ([_cap(nom)] if rng.random() < 0.3 else []) + words + ([f"{slots['gb']}GB"] if rng.random() < 0.15 else [])
        )
    elif style == "animal" and p1 not in ("", "Другая") and rng.random() < 0.7:
        words = [_cap(nom), "породы", p1] if not p1.endswith("ая") else [p1, "кошка"]
    elif style in ("animal", "animal_plain", "business") and rng.random() < 0.5:
        words = ["Продам", acc] if not row["free"] else [_cap(nom), "в", "добрые", "руки"]
    elif style == "kids":
        words = [nom, "на", "девочку" if p1 == "Для девочек" else "мальчика"]
        words += [re.match(r"[<>]? ?(\d+)", p3).group(1)] if p3 and rng.random() < 0.4 else []
    else:
        words = [nom] + ([brand] if brand else [])
        if rng.random() < 0.15:
            words = ["Продам", acc]
    adjs = cat.get("adj") or ["маленький", "домашний"]
    if words[0] == "Продам":
        pass
    elif row["title_new"]:
        words = [text["adjectives"]["новый"][g]] + words
    elif len(" ".join(words).split()) < 2 or (style in ("goods", "kids") and rng.random() < 0.5):
        words = [_adjective(rng, text, adjs, row["colour"], g)] + words
    if len(" ".join(words).split()) < 2:
        words.append(SERVICE_SUFFIX[rng.integers(len(SERVICE_SUFFIX))] if style == "service" else brand or "б/у")
    if row["title_urgent"]:
        words = ["Срочно"] + words if rng.random() < 0.5 else words + ["срочно"]
    words = " ".join(words).split()[:6]
    while len(" ".join(words)) > MAX_TITLE_CHARS:
        words.pop()
    return _cap(" ".join(words))


def _description(rng: np.random.Generator, world: World, cat: dict, row: dict, slots: _Slots, title: str) -> str:
    text, kind = world.vocab["text"], cat["kind"]
    _, acc, _ = row["noun"]
    head: list[str] = []
    if rng.random() < 0.35:
        verb = "Сдаю" if row["p1"] == "Сдам" else "Продаю"
        head.append(f"{title}." if kind == "service" else f"{verb} {acc}.")
    if row["cond"] > 0:
        pool = text["condition"][kind][CONDITIONS[row["cond"]]]
        head.append(pool[rng.integers(len(pool))])
    tail = []
    if row["urgent"]:
        tail.append(text["urgent"][rng.integers(len(text["urgent"]))])
    if row["haggle"]:
        pool = text["bargain"] if row["haggle"] == 1 else text["firm"]
        tail.append(pool[rng.integers(len(pool))])
    if row["free"]:
        tail.append(text["free"][rng.integers(len(text["free"]))])
    brands = cat.get("brands", [])
    if row["brand"] and rng.random() < 0.35:
        tail.append(f"{rng.choice(['Фирма', 'Производитель', 'Марка'])} {row['brand']}.")
    if rng.random() < 0.04:
        tail.append(text["latin"][rng.integers(len(text["latin"]))])
    core = list(cat["details"]) + list(text["fillers"][kind])
    core += list(text["shop"] if kind in ("goods", "car") else text["agency"]) if row["pro"] else []
    order = rng.permutation(len(core))
    parts, length, i = list(head), sum(len(s) + 1 for s in head + tail), 0
    while length < row["desc_len"] or not parts + tail:
        if i < len(order):
            s = core[order[i]]
        elif row["pro"]:  # shops pad long ads with price lists
            n2, _, _ = row["nouns"][rng.integers(len(row["nouns"]))]
            s = f"- {_cap(n2)} {rng.choice(brands) if brands else ''} — {int(rng.integers(2, 300)) * 50} руб.".replace(
                "  ", " "
            )
        else:
            break
        parts.append(s)
        length += len(s) + 1
        i += 1
    parts = [p.format_map(slots) for p in parts + tail]
    out = ("\n" if row["multiline"] else " ").join(parts)
    if row["emoji"]:
        out += " " + text["emoji"][rng.integers(len(text["emoji"]))]
    if len(out) > MAX_DESC_CHARS:
        cut = out[:MAX_DESC_CHARS]
        out = cut[: max(cut.rfind("\n"), cut.rfind(". ") + 1, 1)]
    return out


def render_texts(
    world: World, rows: dict[str, np.ndarray], start: int, stop: int, rng: np.random.Generator
) -> dict[str, object]:
    """Titles and descriptions of rows start:stop, and which latent text signals each row shows."""
    nouns = _nouns(json.dumps([{"nouns": c["nouns"]} for c in world.categories], ensure_ascii=False))
    leaves = world.leaves
    titles, descs = [], []
    for i in range(start, stop):
        k, leaf, gone = int(rows["category"][i]), int(rows["leaf"][i]), bool(rows["p1_missing"][i])
        cat = world.categories[k]
        p1, p2, p3 = ("", "", "") if gone else (leaves.p1[leaf], leaves.p2[leaf], leaves.p3[leaf])
        options = (p2 and nouns[k].get(p2)) or (p1 and nouns[k].get(p1)) or nouns[k][""]
        brands = cat.get("brands", [])
        brand = (
            brands[rng.integers(len(brands))] if brands and rng.random() < cat.get("p_brand", 0) * BRAND_BOOST else ""
        )
        row = {
            "p1": p1,
            "p2": p2,
            "p3": p3,
            "noun": options[rng.integers(len(options))],
            "nouns": options,
            "brand": brand,
            "colour": int(world.code_colour[rows["code"][i]]),
            "free": bool(rows["price_zero"][i]),
            "pro": bool(rows["user_type"][i] > 0),
        }
        for key in ("cond", "urgent", "haggle", "desc_len", "multiline", "emoji", "title_new"):
            row[key] = rows[key][i].item()
        row["title_urgent"] = bool(rows["urgent"][i] and rows["title_urgent"][i])
        slots = _Slots(rng, world.vocab["text"], **({"size": p3} if p3 else {}))
        title = _title(rng, world, cat, row, slots)
        desc = None if rows["desc_missing"][i] else _description(rng, world, cat, row, slots, title)
        if rows["ascii_yo"][i]:
            title, desc = title.replace("ё", "е"), desc and desc.replace("ё", "е")
        titles.append(title)
        descs.append(desc)
    has_desc = ~rows["desc_missing"][start:stop]
    cond = rows["cond"][start:stop]
    urgent = rows["urgent"][start:stop]
    return {
        "title": titles,
        "description": descs,
        "cond_shown": np.where(has_desc | (rows["title_new"][start:stop] & (cond == 1)), cond, 0),
        "urgent_shown": urgent & (has_desc | rows["title_urgent"][start:stop]),
        "haggle_shown": np.where(has_desc, rows["haggle"][start:stop], 0),
        "desc_chars": np.array([len(d) if d else 0 for d in descs]),
    }


__all__ = ["CONDITIONS", "KINDS", "render_texts"]
