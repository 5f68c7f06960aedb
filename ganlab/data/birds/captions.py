"""Captions in the style of the CUB captions, and a parser that reads attributes back.

Reed et al. collected ten captions per CUB image from crowd workers ("this bird has a red
crown, a white belly and a short pointed beak"). The birds world writes its own: each
caption names a random subset of the bird's attributes (2 to 6 of the 14 groups), with
synonyms (beak / bill, breast / chest), varied frames ("this bird has ...", "a small bird
with ...", "... on this bird") and order. Every caption agrees with its image: it is built
from the bird's attribute values, and :func:`parse_caption` recovers exactly the values a
caption names (tested for every caption of thousands of birds).

``mentions`` (group -> value) record what each caption names; the text-alignment metric
checks a generated image against exactly those.
"""

from __future__ import annotations

import re

import numpy as np

from ganlab.data.birds.attributes import ATTRIBUTES

MAX_WORDS = 18  # AttnGAN's WORDS_NUM; captions are written to fit

COLOR_WORDS = {c: (c,) for c in ATTRIBUTES["crown_color"]} | {"grey": ("grey", "gray")}
PART_NOUNS = {  # group -> (nouns, plural?)
    "crown_color": (("crown", "cap", "head"), False),
    "wing_color": (("wings", "wing feathers", "wingbars"), True),
    "breast_color": (("breast", "chest"), False),
    "belly_color": (("belly", "abdomen"), False),
    "tail_color": (("tail", "tail feathers", "rectrices"), None),  # None: by noun
}
PART_ADJECTIVE = {  # "red-crowned bird"
    "crown_color": "crowned",
    "wing_color": "winged",
    "breast_color": "breasted",
    "belly_color": "bellied",
    "tail_color": "tailed",
    "eye_color": "eyed",
}
PATTERN_WORDS = {
    "plain": ("plain", "solid"),
    "striped": ("striped", "barred"),
    "spotted": ("spotted", "speckled"),
}
SHAPE_WORDS = {
    "pointed": ("pointed", "pointy", "sharp"),
    "cone": ("cone shaped", "conical", "thick"),
    "hooked": ("hooked", "hook shaped"),
    "curved": ("curved", "down curved", "curving"),
}
LENGTH_WORDS = {"short": ("short", "stubby"), "long": ("long",)}
BEAK_NOUNS = ("beak", "bill")
EYE_NOUNS = ("eyes", "eye ring")
SIZE_WORDS = {
    "small": ("small", "tiny", "little"),
    "medium": ("medium sized", "average sized"),
    "large": ("large", "big"),
}
POSE_PHRASES = {
    "perched": ("perched on a branch", "sitting on a branch", "resting on a twig"),
    "flying": ("flying", "in flight", "soaring"),
    "standing": ("standing on a rock", "standing on the ground"),
}
ORIENTATION_PHRASES = {
    "left": ("facing left", "looking to the left", "turned to the left"),
    "right": ("facing right", "looking to the right", "turned to the right"),
}
BACKGROUND_PHRASES = {
    "sky": ("against the sky", "in front of the clouds", "with blue sky behind it"),
    "forest": ("in the forest", "among the trees", "in front of green leaves"),
    "water": ("over the water", "by a lake", "near the water"),
    "field": ("in a field", "over a meadow", "in the grass"),
}
SUBJECTS = ("this bird", "the bird", "a bird", "this particular bird", "this is a bird that")
HAS_VERBS = ("has", "has", "with", "features", "shows")
PARTS = (
    "crown_color",
    "wing_color",
    "breast_color",
    "belly_color",
    "tail_color",
    "beak",
    "eye_color",
)
SCENE = ("size", "pose", "orientation", "background")


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _color(rng, value):
    return _pick(rng, COLOR_WORDS[value])


def _article(words: str, plural: bool) -> str:
    if plural:
        return words
    return ("an " if words[0] in "aeiou" else "a ") + words


def _part_phrase(rng, group: str, attrs: dict, mentions: dict) -> str:
    """A noun phrase for one body part, e.g. 'a short pointed black beak'."""
    if group == "beak":
        keys = [g for g in ("beak_length", "beak_shape", "beak_color") if rng.random() < 0.6]
        keys = keys or [_pick(rng, ("beak_length", "beak_shape", "beak_color"))]
        words = []
        for g in ("beak_length", "beak_shape", "beak_color"):
            if g in keys:
                table = {"beak_length": LENGTH_WORDS, "beak_shape": SHAPE_WORDS}.get(g)
                words.append(_pick(rng, table[attrs[g]]) if table else _color(rng, attrs[g]))
                mentions[g] = attrs[g]
        return _article(" ".join(words) + " " + _pick(rng, BEAK_NOUNS), plural=False)
    if group == "eye_color":
        mentions[group] = attrs[group]
        noun = _pick(rng, EYE_NOUNS)
        return _article(f"{_color(rng, attrs[group])} {noun}", plural=noun == "eyes")
    nouns, plural = PART_NOUNS[group]
    noun = _pick(rng, nouns)
    plural = noun.endswith("s") if plural is None else plural
    mentions[group] = attrs[group]
    color = _color(rng, attrs[group])
    if group == "wing_color" and rng.random() < 0.5:
        mentions["wing_pattern"] = attrs["wing_pattern"]
        pattern = _pick(rng, PATTERN_WORDS[attrs["wing_pattern"]])
        color = f"{pattern} {color}" if rng.random() < 0.5 else f"{color} {pattern}"
    return _article(f"{color} {noun}", plural)


def _join(phrases: list[str]) -> str:
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _caption(rng, attrs: dict) -> tuple[str, dict]:
    mentions: dict[str, str] = {}
    parts = list(rng.permutation(PARTS))[: int(rng.integers(2, 5))]
    scene = [g for g in SCENE if rng.random() < 0.3]

    # the subject, possibly with a size word and a compound adjective ("red-crowned")
    subject_words = []
    if "size" in scene and rng.random() < 0.8:
        subject_words.append(_pick(rng, SIZE_WORDS[attrs["size"]]))
        mentions["size"] = attrs["size"]
        scene.remove("size")
    compound = [p for p in parts if p in PART_ADJECTIVE]
    if compound and rng.random() < 0.35:
        g = compound[0]
        parts.remove(g)
        subject_words.append(f"{_color(rng, attrs[g])}-{PART_ADJECTIVE[g]}")
        mentions[g] = attrs[g]
    noun_phrases = [_part_phrase(rng, g, attrs, mentions) for g in parts]

    tail_clauses = []
    for g in scene:
        table = {
            "size": None,
            "pose": POSE_PHRASES,
            "orientation": ORIENTATION_PHRASES,
            "background": BACKGROUND_PHRASES,
        }[g]
        if table is None:
            tail_clauses.append("and it is " + _pick(rng, SIZE_WORDS[attrs["size"]]))
        else:
            tail_clauses.append(_pick(rng, table[attrs[g]]))
        mentions[g] = attrs[g]

    frame = int(rng.integers(4))
    adj = " ".join(subject_words)
    if frame == 0:  # "this small red-crowned bird has ..."
        det = _pick(rng, ("this", "the", "a"))
        text = f"{det} {adj + ' ' if adj else ''}bird {_pick(rng, HAS_VERBS)} {_join(noun_phrases)}"
    elif frame == 1:  # "a bird with ..."
        text = f"{_article(adj + ' bird', False) if adj else 'a bird'} with {_join(noun_phrases)}"
    elif frame == 2:  # "... on this bird"
        text = f"{_join(noun_phrases)} on this {adj + ' ' if adj else ''}bird"
    else:  # "this bird has ..." with the adjective after
        text = f"{_pick(rng, SUBJECTS[:4])} has {_join(noun_phrases)}"
        if adj:
            text += f", a {adj} bird"
    for clause in tail_clauses:
        text += (
            " " if clause.startswith("and") else (", " if rng.random() < 0.5 else " ")
        ) + clause
    return text, mentions


def make_captions(
    attrs: dict[str, str], rng: np.random.Generator, n: int = 10
) -> tuple[list[str], list[dict]]:
    """``n`` captions of one bird and, for each, the attributes it names (group -> value).

    Captions longer than ``MAX_WORDS`` words are redrawn, so no caption is ever truncated.
    """
    captions, mentions = [], []
    while len(captions) < n:
        text, named = _caption(rng, attrs)
        if len(tokenize(text)) <= MAX_WORDS:
            captions.append(text)
            mentions.append(named)
    return captions, mentions


WORD = re.compile(r"[a-z]+")


def tokenize(text: str) -> list[str]:
    """Lower-case words, punctuation and hyphens dropped: ``"red-crowned"`` -> red, crowned."""
    return WORD.findall(text.lower())


# ---------------------------------------------------------------------------------------
# The parser: reads the attribute values a caption names (used by tests and metrics)
# ---------------------------------------------------------------------------------------


def _phrase_index(table: dict[str, tuple[str, ...]]) -> list[tuple[list[str], str]]:
    """(words, value) pairs, longest phrases first so 'down curved' wins over 'curved'."""
    pairs = [(tokenize(p), v) for v, phrases in table.items() for p in phrases]
    return sorted(pairs, key=lambda p: -len(p[0]))


def _match(words: list[str], i: int, index) -> tuple[str, int] | None:
    for phrase, value in index:
        if words[i : i + len(phrase)] == phrase:
            return value, len(phrase)
    return None


_COLOR_INDEX = _phrase_index(COLOR_WORDS)
_PATTERN_INDEX = _phrase_index(PATTERN_WORDS)
_SHAPE_INDEX = _phrase_index(SHAPE_WORDS)
_LENGTH_INDEX = _phrase_index(LENGTH_WORDS)
_SIZE_INDEX = _phrase_index(SIZE_WORDS)
_SCENE_INDEX = [
    (g, _phrase_index(t))
    for g, t in (
        ("pose", POSE_PHRASES),
        ("orientation", ORIENTATION_PHRASES),
        ("background", BACKGROUND_PHRASES),
    )
]
_NOUN_GROUP = {tuple(tokenize(n)): g for g, (nouns, _) in PART_NOUNS.items() for n in nouns}
_NOUN_GROUP |= {tuple(tokenize(n)): "beak" for n in BEAK_NOUNS}
_NOUN_GROUP |= {tuple(tokenize(n)): "eye_color" for n in EYE_NOUNS}
_NOUNS = sorted(_NOUN_GROUP, key=len, reverse=True)
_ADJ_GROUP = {a: g for g, a in PART_ADJECTIVE.items()}


def parse_caption(text: str) -> dict[str, str]:
    """The attribute values a caption names, read back from its words alone."""
    words = tokenize(text)
    found: dict[str, str] = {}
    pending: list[tuple[str, str]] = []  # modifiers waiting for their noun: (kind, value)
    i = 0
    while i < len(words):
        w = words[i]
        scene = next(((g, m) for g, index in _SCENE_INDEX if (m := _match(words, i, index))), None)
        if scene:
            group, (value, n) = scene
            found[group] = value
            i += n
            continue
        noun = next((n for n in _NOUNS if tuple(words[i : i + len(n)]) == n), None)
        if noun:
            group = _NOUN_GROUP[noun]
            for kind, value in pending:
                if group == "beak":
                    found[
                        {"color": "beak_color", "shape": "beak_shape", "length": "beak_length"}[
                            kind
                        ]
                    ] = value
                elif kind == "color":
                    found[group] = value
                elif kind == "pattern" and group == "wing_color":
                    found["wing_pattern"] = value
            pending = []
            i += len(noun)
            continue
        if w in _ADJ_GROUP and pending and pending[-1][0] == "color":
            found[_ADJ_GROUP[w]] = pending.pop()[1]
            i += 1
            continue
        if w == "bird" and pending:
            for kind, value in pending:
                if kind == "size":
                    found["size"] = value
            pending = []
            i += 1
            continue
        for kind, index in (
            ("shape", _SHAPE_INDEX),
            ("length", _LENGTH_INDEX),
            ("size", _SIZE_INDEX),
            ("color", _COLOR_INDEX),
            ("pattern", _PATTERN_INDEX),
        ):
            m = _match(words, i, index)
            if m:
                pending.append((kind, m[0]))
                i += m[1]
                break
        else:
            if w not in ("and", "a", "an"):
                pending = [p for p in pending if p[0] == "size"] if w == "is" else []
            i += 1
    for kind, value in pending:  # "... and is small"
        if kind == "size":
            found["size"] = value
    return found
