"""Using a trained model outside training: faces in photos and videos, and export.

- :mod:`.boxes`: face boxes, IoU, greedy matching, and the square crops with a margin around them;
- :mod:`.detect`: face detectors whose weights ship inside installed packages;
- :mod:`.media`: which inputs are images and which are videos, and reading them;
- :mod:`.faces`: detect, crop and classify the faces of one picture, and its JSON record;
- :mod:`.timeline`: faces of a video over time (tracks, ``timeline.csv``, ``timeline.png``);
- :mod:`.pipeline`: ``semilearn predict --detect_faces`` over many inputs (and ``--annotate``);
- :mod:`.export`: ONNX / TorchScript files and the JSON that describes them;
- :mod:`.exported`: predictors that run those files (onnxruntime on NumPy, TorchScript);
- :mod:`.models`: which model ``predict`` and ``serve`` use (a checkpoint, an export, the shipped one).

The ONNX path (``models``, ``exported``, ``faces``, ``detect``, ``boxes``, ``media``, ``pipeline``)
imports neither torch nor semilearn.

Nothing here imports :mod:`leaf_plugin.cli`.
"""
