"""`lingshu serve MODEL`: an HTTP server for a trained (or exported) lingshu model.

FastAPI + uvicorn, bound to 127.0.0.1 by default.

- `POST /v1/extract` takes `{"text": ...}` or `{"texts": [...]}`; for a pair model
  `{"text": ..., "text_pair": ...}` or `{"texts": [{"text": ..., "text_pair": ...}, ...]}`.
  It answers `{"documents": [Document.to_dict(), ...]}` in the order given.
- `GET /v1/model`: task, labels, schema, backbone, max_seq_length, backend.
- `GET /health`; OpenAPI docs at `/docs`; a web page at `/`.

Requests are micro-batched: texts that arrive within `max_wait_ms` of each other (up to
`max_batch`) go through the model together, in one worker thread off the event loop. Limits answer
with a JSON error instead of queueing without bound: a body over `max_body_bytes`, a text over
`max_text_chars` or more than `max_texts` texts is 413; bad JSON or wrong fields 422; more than
`max_queue` texts waiting is 503 with Retry-After. With an API key (`--api-key` or
LINGSHU_API_KEY) every endpoint but /health needs `X-API-Key: KEY` or `Authorization: Bearer KEY`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any, Callable, Union

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger("lingshu")

API_KEY_ENV = "LINGSHU_API_KEY"


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="the text (a pair model: the first text)")
    text_pair: str | None = Field(None, description="a pair model's second text")



class ExtractRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(None, description="one text")
    text_pair: str | None = Field(None, description="a pair model's second text, with `text`")
    texts: list[Union[str, Item]] | None = Field(None, description="many texts (pair model: objects)")



class ExtractResponse(BaseModel):
    documents: list[dict[str, Any]]


class ErrorBody(BaseModel):
    error: str = Field(description="what is wrong, in words")
    status: int = Field(description="the HTTP status code again")


def request_schema(pair: bool, max_text_chars: int, max_texts: int) -> dict:
    """The JSON schema of a /v1/extract body for this model, as the OpenAPI description states it:
    one text or a list of them (a pair model: text + text_pair, or a list of such objects), no
    other fields, no blank text, within the limits (over them: 413)."""
    text = {"type": "string", "pattern": r"\S", "maxLength": max_text_chars}
    one = {"text": text, "text_pair": text} if pair else {"text": text}
    item = {"type": "object", "properties": one, "required": list(one), "additionalProperties": False}
    return {"oneOf": [
        {**item, "title": "One pair" if pair else "One text"},
        {"type": "object", "title": "Many", "required": ["texts"], "additionalProperties": False,
         "properties": {"texts": {"type": "array", "maxItems": max_texts, "items": item if pair else text}}},
    ]}


class Overloaded(Exception):
    pass


class MicroBatcher:
    """Collects the texts of concurrent requests into batches for `fn` (a list of inputs -> a list
    of outputs, run in one worker thread); bounded: `submit` raises Overloaded when more than
    `max_queue` inputs are waiting."""

    def __init__(self, fn: Callable[[list], list], max_batch: int = 32, max_wait_ms: float = 5.0,
                 max_queue: int = 256):
        self.fn, self.max_batch, self.max_wait = fn, max(1, max_batch), max(0.0, max_wait_ms) / 1000
        self.max_queue = max_queue
        self.pending = 0
        self.batches: list[int] = []  # sizes of the batches run (the last 1000), for /health and tests
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._pool: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        # made here, not in __init__: an app whose lifespan runs again (a second test client, a
        # server restarted in-process) needs a fresh pool, the last one was shut down by stop()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lingshu-model")
        self.pending = 0
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def submit(self, items: list) -> list:
        if self.pending + len(items) > self.max_queue:
            raise Overloaded(f"{self.pending} texts are waiting (at most {self.max_queue})")
        fut = asyncio.get_running_loop().create_future()
        self.pending += len(items)
        self._queue.put_nowait((items, fut))
        return await fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            batch, n = [first], len(first[0])
            deadline = loop.time() + self.max_wait
            while n < self.max_batch:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    nxt = await asyncio.wait_for(self._queue.get(), left)
                except asyncio.TimeoutError:
                    break
                batch.append(nxt)
                n += len(nxt[0])
            flat = [x for items, _ in batch for x in items]
            try:
                out = await loop.run_in_executor(self._pool, self.fn, flat)
            except Exception as e:  # noqa: BLE001 - every waiting request gets the error
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
            else:
                i = 0
                for items, fut in batch:
                    if not fut.done():
                        fut.set_result(out[i : i + len(items)])
                    i += len(items)
            finally:
                self.pending -= n
                self.batches = (self.batches + [len(flat)])[-1000:]


def model_info(nlp) -> dict:
    spec = nlp.spec
    cfg = getattr(nlp.model, "config", None)
    info = {"task": nlp.task.name, "decoder": spec.decoder, "labels": list(spec.labels),
            "max_seq_length": spec.max_seq_length, "backend": nlp.backend.name,
            "backbone": {"model_type": getattr(cfg, "model_type", None),
                         "layers": getattr(cfg, "num_hidden_layers", None),
                         "hidden_size": getattr(cfg, "hidden_size", None)}}
    if spec.patterns:
        info["schema"] = [list(p) for p in spec.patterns]
    return info


def create_app(nlp, *, max_batch: int = 32, max_wait_ms: float = 5.0, max_queue: int = 256,
               max_text_chars: int = 10_000, max_texts: int = 64, max_body_bytes: int = 1 << 20,
               api_key: str | None = None):
    """The FastAPI app around a pipeline (`lingshu.load(...)`)."""
    from contextlib import asynccontextmanager

    from lingshu.schema import Document

    info = model_info(nlp)
    pair = _takes_pairs(nlp)

    def run(items: list) -> list[dict]:
        docs = [Document(t["text"], text_pair=t.get("text_pair")) for t in items]
        return [d.to_dict() for d in nlp.predict(docs)]

    batcher = MicroBatcher(run, max_batch, max_wait_ms, max_queue)

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        yield
        await batcher.stop()

    try:  # /docs and /redoc from files in the package, not a CDN (our machines are offline)
        from fastapi_offline import FastAPIOffline as make_app
    except ImportError:  # plain FastAPI: the docs page loads Swagger UI from a CDN
        make_app = FastAPI
    app = make_app(title="lingshu", version=_version(), lifespan=lifespan,
                   description=f"{info['task']} model ({info['decoder']}); see /v1/model")

    def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)

    def invalid_body(errors: list) -> JSONResponse:
        first = errors[0] if errors else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return error(422, f"invalid request: {where + ': ' if where else ''}{first.get('msg', 'bad body')}")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return invalid_body(exc.errors())

    @app.middleware("http")
    async def body_limit(request: Request, call_next):
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > max_body_bytes:
            return error(413, f"the body is {int(size):,} bytes; at most {max_body_bytes:,}")
        if request.method == "POST" and size is None:  # chunked: read it, within the limit
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > max_body_bytes:
                    return error(413, f"the body is over {max_body_bytes:,} bytes")
            request._body = body
        return await call_next(request)

    def check_key(request: Request):
        if not api_key:
            return
        given = request.headers.get("x-api-key") or ""
        auth = request.headers.get("authorization") or ""
        if auth.lower().startswith("bearer "):
            given = given or auth[7:]
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            raise HTTPException(401, "a valid API key is needed (X-API-Key or Authorization: Bearer)")

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception):
        log.exception("request failed")
        return error(500, f"the model failed on this request: {type(exc).__name__}: {exc}")

    from starlette.exceptions import HTTPException as AnyHTTPException  # 404s and 405s too

    @app.exception_handler(AnyHTTPException)
    async def http_error(request: Request, exc: AnyHTTPException):
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.get("/health")
    async def health():
        return {"status": "ok", "waiting": batcher.pending, "batches_run": len(batcher.batches)}

    @app.get("/v1/model", dependencies=[Depends(check_key)])
    async def model():
        return info

    errors = {422: "bad JSON, wrong or missing fields, a blank text",
              413: f"a body over {max_body_bytes:,} bytes, a text over {max_text_chars:,} characters or "
                   f"more than {max_texts} texts", 503: "overloaded: retry after Retry-After seconds"}
    if api_key:
        errors[401] = "no valid API key"
    body = {"required": True, "content": {"application/json": {
        "schema": request_schema(pair, max_text_chars, max_texts)}}}

    @app.post("/v1/extract", response_model=ExtractResponse, dependencies=[Depends(check_key)],
              openapi_extra={"requestBody": body},
              responses={code: {"model": ErrorBody, "description": why} for code, why in errors.items()})
    async def extract(request: Request):
        # the body is read here, not by FastAPI, so that the OpenAPI description can state the
        # request's real shape (`request_schema`) and every error keeps lingshu's JSON form
        try:
            req = ExtractRequest.model_validate_json(await request.body())
        except ValidationError as e:
            return invalid_body(e.errors())
        if (req.text is None) == (req.texts is None):
            return error(422, 'give either "text" or "texts"')
        if req.text is not None:
            items = [{"text": req.text, "text_pair": req.text_pair}]
        else:
            if req.text_pair is not None:
                return error(422, '"text_pair" goes with "text"; in "texts" give objects {"text", "text_pair"}')
            items = [{"text": t} if isinstance(t, str) else t.model_dump() for t in req.texts]
        if len(items) > max_texts:
            return error(413, f"{len(items)} texts in one request; at most {max_texts}")
        for k, it in enumerate(items):
            if pair and it.get("text_pair") is None:
                return error(422, f"texts[{k}]: a pair model needs text and text_pair")
            if not pair and it.get("text_pair") is not None:
                return error(422, f"texts[{k}]: text_pair is for pair models; this is a {info['task']} model")
            for name in ("text", "text_pair"):
                t = it.get(name)
                if t is not None and len(t) > max_text_chars:
                    return error(413, f"texts[{k}].{name} has {len(t):,} characters; at most {max_text_chars:,}")
                if t is not None and not t.strip():
                    return error(422, f"texts[{k}].{name} is empty")
        try:
            docs = await batcher.submit(items)
        except Overloaded as e:
            return error(503, f"overloaded: {e}; retry shortly", {"Retry-After": "1"})
        except ValueError as e:  # e.g. a lone surrogate the pipeline refuses
            return error(422, str(e))
        return {"documents": docs}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return resources.files("lingshu").joinpath("resources/serve.html").read_text(encoding="utf-8")

    return app


def _takes_pairs(nlp) -> bool:
    try:
        nlp.as_document(("a", "b"))
    except TypeError:
        return False
    return True


def _version() -> str:
    from lingshu import __version__

    return __version__


def serve(model: str, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          device: str | None = None, backend: str | None = None, threads: int | None = None, **limits) -> None:
    import uvicorn

    import lingshu

    api_key = api_key or os.environ.get(API_KEY_ENV) or None
    if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        log.warning("serving on %s without an API key: anyone who can reach this port can use the model "
                    "(--api-key or %s)", host, API_KEY_ENV)
    nlp = lingshu.load(model, device=device, backend=backend, threads=threads)
    app = create_app(nlp, api_key=api_key, **limits)
    log.info("serving %s (%s, %s backend) on http://%s:%d/ (API docs: /docs)", model, nlp.task.name,
             nlp.backend.name, host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning")
