"""``semilearn serve``: a FastAPI app around the deploy pipeline (detect, crop, classify faces).

- :mod:`.limits`: the server's limits and the errors it answers with (status and one line);
- :mod:`.upload`: the request body read under a size cap and its multipart form parsed in memory;
- :mod:`.decode`: an uploaded picture checked (header dimensions first) and decoded;
- :mod:`.worker`: one inference at a time on one thread, behind a bounded queue;
- :mod:`.schema`: the JSON bodies, as pydantic models (the OpenAPI schema at ``/docs``);
- :mod:`.app`: the routes (``/``, ``/api/predict``, ``/api/model``, ``/healthz``) and the page in ``static/``.

Nothing is written to disk.  Nothing here imports torch: a checkpoint's predictor brings it.
"""
