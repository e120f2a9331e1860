"""The approach kinds: each kind's package, and the params group its own settings live in.

Apart from approaches/base.py (the interface) so that the settings check (core/settings.py) knows
which top-level groups belong to approaches without importing any approach's code: a stage checks
the shared groups, and an approach checks its own group when it reads it."""

# kind -> its package: `<package>.approach` is the module (the Approach interface), and
# `<package>.settings` defines `Settings` when the kind has a settings group of its own.
KINDS = {
    "embed_lr": "textclf.approaches.embed_lr",
    "centroid": "textclf.approaches.centroid",
    "label_desc": "textclf.approaches.label_desc",
    "task_specific": "textclf.approaches.task_specific",
    "text2text": "textclf.approaches.text2text",
    "llm": "textclf.approaches.llm",
}

# kind -> the top-level group conf/ composes for its settings (conf/approach/<name>.yaml `params`;
# tests/test_settings.py checks they agree). Kinds that read only shared groups have none.
GROUPS = {
    "embed_lr": "classifier",
    "task_specific": "task_specific",
    "text2text": "text2text",
    "llm": "llm",
}
