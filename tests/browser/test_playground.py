"""The playground at `/playground`, used as a developer would: in Chromium, with a token."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.accounting import FP16, INT8, bearer, new_account, run, wait_for_records
from tests.gateway_fixtures import GatewayProcess

SMOLLM2_INT8 = "@twin/smollm2-135m-instruct/llama-2-7b-chat-int8"
MINILM = "@twin/all-minilm-l6-v2/bge-small-en-v1.5"
WATCH_OUTPUT = """() => {
  const output = document.querySelector('[data-testid="output"]');
  window.outputSnapshots = [];
  new MutationObserver(() => window.outputSnapshots.push(output.textContent))
    .observe(output, {childList: true, characterData: true, subtree: true});
}"""


def open_playground(page: Page, gateway: GatewayProcess, token: str) -> None:
    page.goto(f"{gateway.base_url}/playground")
    page.get_by_test_id("token").fill(token)
    page.get_by_test_id("connect").click()
    expect(page.get_by_test_id("connection-status")).to_have_text("Connected.")


def send(page: Page, prompt: str, **settings: str) -> None:
    page.get_by_test_id("prompt").fill(prompt)
    for name, value in settings.items():
        page.get_by_test_id(name.replace("_", "-")).fill(value)
    page.get_by_test_id("send").click()


def stat(page: Page, name: str) -> str:
    return str(page.get_by_test_id(f"stat-{name}").text_content())


def test_the_playground_streams_an_answer_piece_by_piece(
    page: Page, smollm2_gateway: GatewayProcess
) -> None:
    account_id, token = new_account(smollm2_gateway)
    open_playground(page, smollm2_gateway, token)
    expect(page.get_by_test_id("account")).to_have_value(account_id)
    page.get_by_test_id("model").select_option(SMOLLM2_INT8)
    page.evaluate(WATCH_OUTPUT)

    send(page, "What is the capital of France?", temperature="0")

    expect(page.get_by_test_id("stat-outcome")).to_have_text("finished", timeout=60_000)
    answer = str(page.get_by_test_id("output").text_content())
    assert "Paris" in answer
    pieces = [text for text in page.evaluate("window.outputSnapshots") if text]
    assert len(set(pieces)) >= 3, pieces
    assert all(answer.startswith(piece) for piece in pieces)
    assert pieces[-1] == answer
    [record] = wait_for_records(smollm2_gateway, 1, request_id=stat(page, "request-id"))
    assert record["status"] == "ok"
    assert stat(page, "usage") == (
        f"{record['prompt_tokens']} prompt + {record['completion_tokens']} completion"
        f" = {int(record['prompt_tokens']) + int(record['completion_tokens'])} tokens"
    )
    assert re.fullmatch(r"\d+ ms", stat(page, "time-to-first-token"))
    assert float(stat(page, "tokens-per-second")) > 0


def test_the_embeddings_mode_shows_how_similar_the_pasted_texts_are(
    page: Page, smollm2_gateway: GatewayProcess
) -> None:
    _, token = new_account(smollm2_gateway)
    open_playground(page, smollm2_gateway, token)
    page.get_by_test_id("model").select_option(MINILM)
    expect(page.get_by_test_id("model-limits")).to_have_text(
        "Up to 512 tokens per text \N{MIDDLE DOT} 384 dimensions"
    )
    expect(page.get_by_test_id("prompt")).to_be_hidden()
    expect(page.get_by_test_id("pooling").locator("option")).to_have_text(["mean", "cls"])
    page.get_by_test_id("texts").fill(
        "A man is eating food.\nA man is eating a piece of bread.\n\nThe new movie is awesome."
    )
    page.get_by_test_id("send").click()

    expect(page.get_by_test_id("stat-outcome")).to_have_text("finished", timeout=60_000)
    shape = "3 \N{MULTIPLICATION SIGN} 384"
    expect(page.get_by_test_id("stat-vectors")).to_have_text(f"{shape} (mean pooling)")
    cells = page.get_by_test_id("similarity-cell")
    expect(cells).to_have_count(9)
    similarity = {
        (int(str(cell.get_attribute("data-row"))), int(str(cell.get_attribute("data-column")))):
        float(str(cell.text_content()))
        for cell in cells.all()
    }  # fmt: skip
    assert [similarity[i, i] for i in range(3)] == [1.0, 1.0, 1.0]
    assert similarity[0, 1] == similarity[1, 0] == 0.755  # all-MiniLM-L6-v2's own figure
    assert similarity[0, 2] < 0.1
    [record] = wait_for_records(smollm2_gateway, 1, request_id=stat(page, "request-id"))
    assert (record["status"], record["completion_tokens"]) == ("ok", 0)


def test_a_chat_keeps_its_system_message_and_earlier_turns(
    page: Page, smollm2_gateway: GatewayProcess
) -> None:
    _, token = new_account(smollm2_gateway)
    open_playground(page, smollm2_gateway, token)
    page.get_by_test_id("model").select_option(SMOLLM2_INT8)
    page.get_by_test_id("mode-chat").check()
    page.get_by_test_id("system").fill("Answer in one short sentence.")

    send(page, "What is the capital of France?", temperature="0")
    expect(page.get_by_test_id("stat-outcome")).to_have_text("finished", timeout=60_000)
    first = stat(page, "request-id")
    first_answer = str(page.get_by_test_id("output").text_content())
    send(page, "And the capital of Japan?")
    expect(page.get_by_test_id("stat-outcome")).to_have_text("finished", timeout=60_000)

    turns = page.get_by_test_id("transcript").locator("li")
    expect(turns).to_have_text(
        ["What is the capital of France?", first_answer, "And the capital of Japan?"]
    )
    [earlier] = wait_for_records(smollm2_gateway, 1, request_id=first)
    [later] = wait_for_records(smollm2_gateway, 1, request_id=stat(page, "request-id"))
    assert int(later["prompt_tokens"]) > int(earlier["prompt_tokens"]) + int(
        earlier["completion_tokens"]
    )


def test_stop_aborts_the_run_and_its_record_says_client_cancelled(
    page: Page, cors_gateway: GatewayProcess
) -> None:
    account_id, token = new_account(cors_gateway)
    open_playground(page, cors_gateway, token)
    page.get_by_test_id("model").select_option(INT8)
    # Seed 3 samples this prompt's 1,800 tokens without the end token (~4.5 s at 400 tokens/s).
    send(page, "Tell me a long story.", max_tokens="1800", seed="3")
    expect(page.get_by_test_id("output")).not_to_be_empty()
    expect(page.get_by_test_id("stop")).to_be_enabled()

    page.get_by_test_id("stop").click()

    expect(page.get_by_test_id("stat-outcome")).to_have_text("stopped")
    expect(page.get_by_test_id("send")).to_be_enabled()
    expect(page.get_by_test_id("stop")).to_be_disabled()
    billed = int(stat(page, "usage"))
    [record] = wait_for_records(cors_gateway, 1, request_id=stat(page, "request-id"))
    assert record["status"] == "client_cancelled"
    assert billed <= int(record["completion_tokens"]) < 1800
    assert record["account_id"] == account_id


def test_the_usage_charts_draw_the_accounts_runs_per_day_and_per_model(
    page: Page, cors_gateway: GatewayProcess
) -> None:
    account = new_account(cors_gateway)
    for model, max_tokens in [(INT8, 5), (INT8, 7), (FP16, 11)]:
        reply = run(cors_gateway, account, {"prompt": "Hi", "max_tokens": max_tokens}, model)
        assert reply.status_code == 200, reply.text
    records = wait_for_records(cors_gateway, 3, account_id=account[0])
    tokens = {
        model: sum(
            int(r["prompt_tokens"]) + int(r["completion_tokens"])
            for r in records
            if r["model"] == model
        )
        for model in (INT8, FP16)
    }

    open_playground(page, cors_gateway, account[1])

    by_model = page.get_by_test_id("usage-by-model").locator("g.bar")
    expect(by_model).to_have_count(2)
    drawn = {
        bar.get_attribute("data-key"): int(str(bar.get_attribute("data-tokens")))
        for bar in by_model.all()
    }
    assert drawn == tokens
    today = str(records[0]["started_at"])[:10]
    day_bar = page.get_by_test_id("usage-by-day").locator(f'g.bar[data-key="{today}"]')
    expect(day_bar).to_have_attribute("data-tokens", str(sum(tokens.values())))
    assert day_bar.locator("rect.completion").bounding_box()["height"] > 0  # type: ignore[index]
    expect(page.get_by_test_id("usage-total")).to_contain_text("3 runs")

    page.get_by_test_id("model").select_option(FP16)
    send(page, "Hello", max_tokens="9")
    expect(page.get_by_test_id("stat-outcome")).to_have_text("finished")
    expect(page.get_by_test_id("usage-total")).to_contain_text("4 runs", timeout=15_000)


def test_every_model_is_offered_with_its_limits(page: Page, cors_gateway: GatewayProcess) -> None:
    account_id, token = new_account(cors_gateway)
    with cors_gateway.client() as client:
        models = client.get(
            f"/client/v4/accounts/{account_id}/ai/models/search", headers=bearer(token)
        ).json()["result"]

    open_playground(page, cors_gateway, token)

    options = page.get_by_test_id("model").locator("option")
    expect(options).to_have_count(len(models))
    for model in models:
        page.get_by_test_id("model").select_option(model["name"])
        limits = page.get_by_test_id("model-limits")
        expect(limits).to_contain_text(f"{model['context_length']:,} tokens")
        expect(limits).to_contain_text(f"up to {model['sequence_length']:,} tokens")
        expect(page.get_by_test_id("max-tokens")).to_have_attribute(
            "max", str(model["sequence_length"])
        )


def test_a_wrong_token_shows_the_envelopes_error(page: Page, cors_gateway: GatewayProcess) -> None:
    page.goto(f"{cors_gateway.base_url}/playground")
    page.get_by_test_id("token").fill("gwk_not-a-real-token")
    page.get_by_test_id("connect").click()

    expect(page.get_by_test_id("error")).to_have_text(
        "10000: Authentication error: invalid API token"
    )
    expect(page.get_by_test_id("send")).to_be_disabled()


def test_a_refused_run_shows_the_envelopes_error(page: Page, cors_gateway: GatewayProcess) -> None:
    _, token = new_account(cors_gateway)
    open_playground(page, cors_gateway, token)
    page.get_by_test_id("model").select_option(INT8)

    send(page, "Hello", max_tokens="5000")

    expect(page.get_by_test_id("error")).to_contain_text("5006: ")
    expect(page.get_by_test_id("error")).to_contain_text("max_tokens")
    expect(page.get_by_test_id("stat-outcome")).to_have_text("failed")


def test_the_token_goes_into_no_url_and_no_storage_unless_asked(
    page: Page, cors_gateway: GatewayProcess
) -> None:
    _, token = new_account(cors_gateway)
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    storage = "() => JSON.stringify([{...sessionStorage}, {...localStorage}, document.cookie])"

    open_playground(page, cors_gateway, token)
    page.get_by_test_id("model").select_option(INT8)
    send(page, "Hello", max_tokens="3")
    expect(page.get_by_test_id("stat-outcome")).to_have_text("finished")

    assert not [url for url in urls if token in url]
    assert page.evaluate(storage) == '[{},{},""]'
    page.get_by_test_id("remember").check()
    assert token in page.evaluate(storage)
    page.reload()
    expect(page.get_by_test_id("connection-status")).to_have_text("Connected.")
    page.get_by_test_id("remember").uncheck()
    assert page.evaluate(storage) == '[{},{},""]'


def test_the_page_runs_under_a_strict_content_security_policy(
    page: Page, cors_gateway: GatewayProcess
) -> None:
    _, token = new_account(cors_gateway)
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )

    response = page.goto(f"{cors_gateway.base_url}/playground")

    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    injected = page.evaluate(
        """() => {
          const script = document.createElement('script');
          script.textContent = 'window.injected = true';
          document.head.append(script);
          return window.injected === true;
        }"""
    )
    assert injected is False
    errors.clear()
    page.get_by_test_id("token").fill(token)
    page.get_by_test_id("connect").click()
    expect(page.get_by_test_id("connection-status")).to_have_text("Connected.")
    send(page, "Hello", max_tokens="3")
    expect(page.get_by_test_id("stat-outcome")).to_have_text("finished")
    assert errors == []
    assert httpx.get(f"{cors_gateway.base_url}/playground/nothing.js").status_code == 404
