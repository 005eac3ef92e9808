"""The OpenAI-compatible API, driven by the official ``openai`` client and by raw HTTP."""

from __future__ import annotations

import json
import logging
import random
import threading
import time

import httpx
import pytest
import torch

from dlm.data import encode_prompts
from dlm.sampling import SamplerSettings, generate
from dlm.serve import ServeConfig, create_app
from serve_helpers import running_server, text_model, text_tokenizer

openai = pytest.importorskip("openai")


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0)


def reference(model, tokenizer, prompt: str, **options) -> tuple[list[int], str]:
    """``generate`` on the prompt alone: the region and its text up to the EOS."""
    ids = torch.tensor(encode_prompts(tokenizer, [prompt]))
    region = generate(model, ids, settings=SamplerSettings(**options)).generated[0].tolist()
    eos = model.config.eos_token_id
    upto = region.index(eos) if eos in region else len(region)
    return region, tokenizer.decode(region[:upto], skip_special_tokens=True)


def sse(url: str, body: dict, headers: dict | None = None) -> list[tuple[str, object]]:
    """(event name, parsed data) of every server-sent event of a streaming request."""
    out = []
    with httpx.stream("POST", url + "/v1/completions", json=body, headers=headers, timeout=60) as r:
        assert r.status_code == 200, r.read()
        event = "message"
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
                out.append((event, data if data == "[DONE]" else json.loads(data)))
                event = "message"
    return out


def test_completion_equals_generate_and_reports_usage(client, model, tokenizer):
    region, text = reference(model, tokenizer, "abc12", max_new_tokens=10, steps=5)
    r = client.completions.create(model="tiny", prompt="abc12", max_tokens=10, extra_body={"steps": 5})
    assert r.object == "text_completion"
    assert r.choices[0].text == text and text
    assert r.model_extra["dlm"]["tokens"] == [region]
    assert r.model_extra["dlm"]["nfe"] == [5]
    assert r.usage.prompt_tokens == len(encode_prompts(tokenizer, ["abc12"])[0])
    assert r.choices[0].finish_reason in ("stop", "length")


def test_streamed_text_arrives_in_order_and_joins_to_the_completion(client):
    options = dict(model="tiny", prompt="hij0", max_tokens=16, extra_body={"policy": "margin"})
    whole = client.completions.create(**options).choices[0].text
    chunks = list(client.completions.create(stream=True, **options))
    texts = [c.choices[0].text for c in chunks if c.choices]
    assert "".join(texts) == whole
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])


def test_chat_uses_the_template_and_streams_a_role_first(client, model, tokenizer):
    _, text = reference(model, tokenizer, "ab" + "cd", max_new_tokens=8)
    messages = [{"role": "system", "content": "ab"}, {"role": "user", "content": "cd"}]
    r = client.chat.completions.create(model="tiny", messages=messages, max_tokens=8)
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant" and r.choices[0].message.content == text
    chunks = list(client.chat.completions.create(model="tiny", messages=messages, max_tokens=8, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == text


def test_n_choices_take_seed_plus_index(client, model, tokenizer):
    r = client.completions.create(
        model="tiny", prompt="a1", max_tokens=8, n=3, temperature=1.0, seed=11
    )
    assert [c.index for c in r.choices] == [0, 1, 2]
    for k, choice in enumerate(r.choices):
        region, text = reference(model, tokenizer, "a1", max_new_tokens=8, temperature=1.0, seed=11 + k)
        assert choice.text == text and r.model_extra["dlm"]["tokens"][k] == region


def test_stop_strings_cut_the_text_and_end_the_row(client):
    whole = client.completions.create(model="tiny", prompt="bb", max_tokens=20).choices[0].text
    assert len(whole) > 3
    stop = whole[2:4]
    r = client.completions.create(model="tiny", prompt="bb", max_tokens=20, stop=[stop])
    assert r.choices[0].text == whole[: whole.index(stop)]
    assert r.choices[0].finish_reason == "stop"
    streamed = list(client.completions.create(model="tiny", prompt="bb", max_tokens=20, stop=stop, stream=True))
    assert "".join(c.choices[0].text for c in streamed) == whole[: whole.index(stop)]


def test_suffix_is_pinned_at_the_end_of_the_region(client, tokenizer):
    r = client.completions.create(model="tiny", prompt="ab", suffix="99", max_tokens=8)
    region = r.model_extra["dlm"]["tokens"][0]
    assert region[-2:] == tokenizer("99", add_special_tokens=False)["input_ids"]


def test_request_errors_are_400s_that_name_the_field(client):
    cases = [
        ({"extra_body": {"polcy": "margin"}}, "polcy", "did you mean 'policy'"),
        ({"extra_body": {"policy": "sideways"}}, "policy", "must be one of"),
        ({"extra_body": {"threshold": 2}}, "threshold", "must be in"),
        ({"extra_body": {"compile": True}}, "compile", "server's batch step"),
        ({"logprobs": 2}, "logprobs", "not supported"),
        ({"max_tokens": 10_000}, "max_tokens", "exceeds the model's"),
        ({"temperature": -1}, "temperature", "greater than or equal"),
    ]
    for options, param, words in cases:
        with pytest.raises(openai.BadRequestError) as err:
            client.completions.create(model="tiny", prompt="ab", **{"max_tokens": 8, **options})
        assert err.value.status_code == 400
        assert err.value.body["param"] == param, options
        assert words in err.value.body["message"], err.value.body
    # a settings clash only the run's first step finds is still a 400, before any byte
    with pytest.raises(openai.BadRequestError, match="raise steps or block_length"):
        client.completions.create(
            model="tiny", prompt="ab", max_tokens=12, stream=True,
            extra_body={"steps": 2, "block_length": 4},
        )
    with pytest.raises(openai.BadRequestError, match="outside the model's vocabulary"):
        client.completions.create(model="tiny", prompt="ab~", max_tokens=4)


def test_chat_without_a_template_is_a_clear_400(model):
    app = create_app(model, text_tokenizer(chat=False), ServeConfig())
    with running_server(app) as url:
        c = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.BadRequestError, match="no chat template"):
            c.chat.completions.create(model="dlm", messages=[{"role": "user", "content": "a"}])


def test_dlm_events_stream_each_steps_commits(server, model, tokenizer):
    events = sse(server, {"prompt": "ab", "max_tokens": 12, "steps": 6, "stream": True, "dlm_events": True})
    steps = [data for name, data in events if name == "dlm.step"]
    assert [s["step"] for s in steps] == list(range(6))
    assert [s["nfe"] for s in steps] == list(range(1, 7))
    masked = [s["masked"] for s in steps]
    assert masked == sorted(masked, reverse=True) and masked[-1] == 0
    committed = sorted(p for s in steps for p in s["positions"])
    assert committed == list(range(12))  # every position committed exactly once
    region, text = reference(model, tokenizer, "ab", max_new_tokens=12, steps=6)
    canvas = [None] * 12
    for s in steps:
        for p, t in zip(s["positions"], s["tokens"]):
            canvas[p] = t
    assert canvas == region
    done = [data for name, data in events if name == "dlm.done"]
    assert done[0]["text"] == text and done[0]["nfe"] == 6
    assert events[-1] == ("message", "[DONE]")


def test_outputs_do_not_depend_on_concurrent_requests(server, model, tokenizer):
    """The batch-invariance property over HTTP: random prompts and settings, each alone, then
    all at once with random arrival times; every output identical."""
    rng = random.Random(5)
    requests = []
    for _ in range(10):
        prompt = "".join(rng.choice("abcdefghij0123456789") for _ in range(rng.randrange(1, 12)))
        body = {"prompt": prompt, "max_tokens": rng.choice([6, 10, 16]),
                "policy": rng.choice(["confidence", "margin", "entropy"])}
        if rng.random() < 0.5:
            body["threshold"] = 0.3
        if rng.random() < 0.5:
            body["block_length"] = 2
        requests.append(body)

    def post(body):
        r = httpx.post(server + "/v1/completions", json=body, timeout=60)
        assert r.status_code == 200, r.text
        return r.json()["dlm"]["tokens"][0]

    alone = [post(body) for body in requests]
    together: list = [None] * len(requests)

    def worker(k):
        time.sleep(rng.random() * 0.02)
        together[k] = post(requests[k])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert together == alone


def _long_request_app(model, **config):
    return create_app(model, text_tokenizer(), ServeConfig(**config))


def test_queue_full_is_429_with_retry_after():
    model = text_model(max_positions=512)
    app = _long_request_app(model, max_rows=1, max_queue=0)
    with running_server(app) as url:
        body = {"prompt": "ab", "max_tokens": 480, "steps": 480, "stream": True}
        with httpx.stream("POST", url + "/v1/completions", json=body, timeout=60) as first:
            assert first.status_code == 200
            r = httpx.post(url + "/v1/completions", json={"prompt": "ab", "max_tokens": 4}, timeout=30)
            assert r.status_code == 429
            assert int(r.headers["Retry-After"]) >= 1
            assert r.json()["error"]["type"] == "rate_limit_error"


def _metric(url: str, name: str) -> float:
    text = httpx.get(url + "/metrics").text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_a_client_that_disconnects_frees_its_row():
    model = text_model(max_positions=512)
    app = _long_request_app(model)
    with running_server(app) as url:
        body = {"prompt": "ab", "max_tokens": 480, "steps": 480, "stream": True, "dlm_events": True}
        with httpx.stream("POST", url + "/v1/completions", json=body, timeout=60) as r:
            lines = r.iter_lines()
            while "dlm.step" not in next(lines):
                pass
        deadline = time.monotonic() + 20
        while httpx.get(url + "/health").json()["active_rows"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert httpx.get(url + "/health").json()["active_rows"] == 0
        assert _metric(url, "dlm_row_steps_total") < 480  # it left long before its last step


def test_api_key_is_checked_everywhere_but_health_and_the_page(model, tokenizer):
    app = create_app(model, tokenizer, ServeConfig(api_key="s3cret"))
    with running_server(app) as url:
        assert httpx.get(url + "/health").status_code == 200
        assert httpx.get(url + "/").status_code == 200
        for path in ("/v1/models", "/metrics"):
            assert httpx.get(url + path).status_code == 401
            assert httpx.get(url + path, headers={"Authorization": "Bearer wrong"}).status_code == 401
            assert httpx.get(url + path, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0).completions.create(
                model="dlm", prompt="a", max_tokens=2
            )
        good = openai.OpenAI(base_url=url + "/v1", api_key="s3cret", max_retries=0)
        assert good.completions.create(model="dlm", prompt="a", max_tokens=2).choices


def test_metrics_models_limits_cors_and_access_log(server, model, tokenizer, caplog):
    with caplog.at_level(logging.INFO, logger="dlm.serve.access"):
        r = httpx.get(server + "/v1/models")
        # the record is written once the response has gone out, so it may land just after
        deadline = time.monotonic() + 10
        while not [m for m in caplog.messages if '"/v1/models"' in m] and time.monotonic() < deadline:
            time.sleep(0.01)
    assert r.json()["data"][0]["id"] == "tiny"
    assert r.json()["data"][0]["dlm"]["max_positions"] == model.max_positions
    record = json.loads([m for m in caplog.messages if '"/v1/models"' in m][-1])
    assert record["status"] == 200 and record["method"] == "GET" and record["ms"] >= 0
    assert r.headers["x-request-id"] == record["request_id"]
    httpx.post(server + "/v1/completions", json={"prompt": "a", "max_tokens": 3})
    text = httpx.get(server + "/metrics").text
    for name in ("dlm_queue_depth", "dlm_active_rows", "dlm_steps_per_second", "dlm_tokens_per_second",
                 "dlm_request_latency_seconds_bucket", "dlm_time_to_first_event_seconds_bucket"):
        assert name in text, name
    assert _metric(server, "dlm_steps_total") > 0
    big = {"prompt": "a" * (2 << 20), "max_tokens": 2}
    assert httpx.post(server + "/v1/completions", json=big).status_code == 413
    # CORS is off by default: no allow-origin header, even for a preflight
    pre = httpx.options(server + "/v1/completions", headers={
        "Origin": "http://elsewhere", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in pre.headers
    app = create_app(model, tokenizer, ServeConfig(cors_origins=("http://elsewhere",)))
    with running_server(app) as url:
        pre = httpx.options(url + "/v1/completions", headers={
            "Origin": "http://elsewhere", "Access-Control-Request-Method": "POST"})
        assert pre.headers["access-control-allow-origin"] == "http://elsewhere"


def test_a_chess_models_answer_is_rendered_as_its_board_and_line():
    chess = pytest.importorskip("chess")
    from dlm.chess.encoding import board_string, chess_tokenizer, diffusearch_target
    from dlm.tasks import get_task

    task = get_task("chess", agent="diffusearch")
    tokenizer = chess_tokenizer()
    model = text_model(tokenizer=tokenizer, max_positions=128)
    board = chess.Board()
    prompt, line = board_string(board), diffusearch_target(board, ["e2e4", "e7e5", "g1f3"])
    app = create_app(model, tokenizer, ServeConfig(), task=task)
    with running_server(app) as url:
        info = httpx.get(url + "/v1/models").json()["data"][0]["dlm"]["task"]
        assert info["name"] == "chess"
        shown = httpx.post(url + "/v1/dlm/render", json={"prompt": prompt, "text": line}).json()
        assert shown["rendered"] == task.render(prompt, line)
        assert "e4" in shown["rendered"] and "Nf3" in shown["rendered"]  # the line in SAN
