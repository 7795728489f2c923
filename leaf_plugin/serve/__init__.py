"""``semilearn serve``: a FastAPI app around the deploy pipeline (detect, crop, classify faces).

- :mod:`.upload`: the server's limits, the request body read under its cap, the multipart form
  parsed in memory, the picture checked (header dimensions first) and decoded;
- :mod:`.schema`: the JSON bodies, as pydantic models (the OpenAPI schema at ``/docs``);
- :mod:`.app`: the routes (``/``, ``/api/predict``, ``/api/model``, ``/healthz``), one inference at
  a time behind a bounded queue, and the page in ``static/``.

Nothing is written to disk.  Nothing here imports torch: a checkpoint's predictor brings it.
"""
