"""The pure core of nodefarm: what a run is, with no I/O.

Nothing here imports redis, celery, flask or torch (``tests/unit/test_core_purity.py`` fails if any
module does), so every rule is unit-tested with plain data:

* :mod:`nodes.core.graph`      links, the nodes a run must execute and their blocking edges
* :mod:`nodes.core.listmap`    ComfyUI's list mapping (one call per index, or whole lists)
* :mod:`nodes.core.inputs`     a node's input lists from constants, links and hidden values
* :mod:`nodes.core.signature`  cache keys: a Merkle hash equivalent to ComfyUI's input signature
* :mod:`nodes.core.item`       the queue item, ComfyUI's ``[number, prompt_id, prompt, extra_data, outputs]``
* :mod:`nodes.core.state`      the run state machine: typed state, stimuli in, a Step out
* :mod:`nodes.core.validation` ComfyUI's prompt validation rules and error shapes
"""
