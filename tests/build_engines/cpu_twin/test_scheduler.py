"""In-flight batching: what each request receives, and that requests never wait on each other."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from build_engines.cpu_twin.generation_request import GenerationRequest
from build_engines.cpu_twin.sampling import SamplingParams
from build_engines.cpu_twin.scheduler import UNLOADING_MESSAGE, Outcome, Scheduler
from tests.build_engines.cpu_twin.conftest import MakeScheduler
from tests.build_engines.cpu_twin.doubles import PROMPT, RecordingChannel, RecordingEvents


def generation(output_len: int, prompt: list[int] = PROMPT, **fields: Any) -> GenerationRequest:
    settings: dict[str, Any] = {
        "streaming": True,
        "include_input": False,
        "sampling": SamplingParams(),
    }
    settings.update(fields)
    return GenerationRequest(
        request_id=settings.pop("request_id", ""),
        input_ids=np.array(prompt, dtype=np.int64),
        output_len=output_len,
        **settings,
    )


def run(scheduler: Scheduler, request: GenerationRequest) -> RecordingChannel:
    channel = RecordingChannel()
    scheduler.submit(request, channel)
    return channel.wait()


def first_new_token(tokens: list[int], start: int) -> int:
    """Index (>= start) of a token that does not occur before it."""
    return next(i for i in range(start, len(tokens)) if tokens[i] not in tokens[:i])


def test_streaming_sends_one_final_flagged_response_per_token(scheduler: Scheduler) -> None:
    channel = run(scheduler, generation(12))
    assert [len(sent.token_ids or []) for sent in channel.sent] == [1] * 12
    assert [sent.sequence_length for sent in channel.sent] == list(range(1, 13))
    assert [sent.final for sent in channel.sent] == [False] * 11 + [True]


def test_request_output_len_is_honoured(scheduler: Scheduler, events: RecordingEvents) -> None:
    assert len(run(scheduler, generation(17)).token_ids) == 17
    assert events.wait_for(Outcome.LENGTH)[2] == 17


def test_non_streaming_sends_the_input_then_the_output_in_one_response(
    scheduler: Scheduler,
) -> None:
    streamed = run(scheduler, generation(6)).token_ids
    channel = run(scheduler, generation(6, streaming=False, include_input=True))
    assert len(channel.sent) == 1
    assert channel.sent[0].final
    assert channel.token_ids == PROMPT + streamed
    assert channel.sent[0].sequence_length == len(PROMPT) + 6


def test_end_id_ends_the_stream_with_an_empty_final_response(
    scheduler: Scheduler, events: RecordingEvents
) -> None:
    greedy = run(scheduler, generation(12)).token_ids
    end_at = first_new_token(greedy, 2)
    channel = run(scheduler, generation(12, end_id=greedy[end_at]))
    assert channel.token_ids == greedy[:end_at]
    assert channel.sent[-1].token_ids is None
    assert channel.sent[-1].final
    assert not any(sent.final for sent in channel.sent[:-1])
    events.wait_for(Outcome.END_ID)


def test_min_tokens_keeps_end_id_from_ending_early(scheduler: Scheduler) -> None:
    greedy = run(scheduler, generation(12)).token_ids
    end_at = first_new_token(greedy, 2)
    channel = run(scheduler, generation(12, end_id=greedy[end_at], min_tokens=12))
    assert len(channel.token_ids) == 12
    assert greedy[end_at] not in channel.token_ids


def test_stop_words_end_the_request_after_the_stop_sequence(
    scheduler: Scheduler, events: RecordingEvents
) -> None:
    greedy = run(scheduler, generation(12)).token_ids
    stop_at = first_new_token(greedy, 3)
    channel = run(scheduler, generation(12, stop_words=((greedy[stop_at - 1], greedy[stop_at]),)))
    assert channel.token_ids == greedy[: stop_at + 1]
    assert channel.sent[-1].final
    events.wait_for(Outcome.STOP_WORDS)


def test_bad_words_are_never_generated(scheduler: Scheduler) -> None:
    greedy = run(scheduler, generation(12)).token_ids
    channel = run(scheduler, generation(12, bad_words=((greedy[3],),)))
    assert channel.token_ids[:3] == greedy[:3]
    assert greedy[3] not in channel.token_ids


def test_the_same_seed_gives_the_same_tokens_and_another_seed_differs(scheduler: Scheduler) -> None:
    def sampled(seed: int) -> RecordingChannel:
        channel = RecordingChannel()
        params = SamplingParams(greedy=False, temperature=1.0, seed=seed)
        scheduler.submit(generation(24, sampling=params), channel)
        return channel

    first, again, other = sampled(7), sampled(7), sampled(8)
    assert first.wait().token_ids == again.wait().token_ids
    assert first.token_ids != other.wait().token_ids


def test_a_new_request_starts_while_another_is_mid_generation(
    make_scheduler: MakeScheduler,
) -> None:
    scheduler = make_scheduler(decode_tokens_per_second=200)
    long = RecordingChannel()
    scheduler.submit(generation(60), long)
    while len(long.sent) < 5:
        time.sleep(0.005)
    short = run(scheduler, generation(3))
    long.wait()
    assert short.sent[0].at < long.sent[-1].at
    assert short.sent[-1].at < long.sent[-1].at
    assert len(long.token_ids) == 60


def test_no_more_than_max_inflight_requests_run_at_once(
    make_scheduler: MakeScheduler, events: RecordingEvents
) -> None:
    scheduler = make_scheduler(max_inflight_requests=2, decode_tokens_per_second=200)
    channels = [RecordingChannel() for _ in range(3)]
    for channel in channels:
        scheduler.submit(generation(10), channel)
    for channel in channels:
        channel.wait()
    assert channels[2].sent[0].at > min(channels[0].sent[-1].at, channels[1].sent[-1].at)


def test_a_cancelled_request_is_dropped_and_closed_with_a_final_error(
    make_scheduler: MakeScheduler, events: RecordingEvents
) -> None:
    scheduler = make_scheduler(decode_tokens_per_second=200)
    channel = RecordingChannel()
    scheduler.submit(generation(200, request_id="gone"), channel)
    while len(channel.sent) < 3:
        time.sleep(0.005)
    channel.cancelled = True
    request_id, _, generated = events.wait_for(Outcome.CANCELLED)
    sent_when_dropped = len(channel.sent)
    time.sleep(0.05)
    assert request_id == "gone"
    assert generated < 200
    assert len(channel.sent) == sent_when_dropped
    assert channel.sent[-1].final
    assert "cancelled" in (channel.sent[-1].error or "")


def test_stop_ends_the_request_with_that_id_with_an_empty_final(
    make_scheduler: MakeScheduler, events: RecordingEvents
) -> None:
    scheduler = make_scheduler(decode_tokens_per_second=200)
    target, bystander = RecordingChannel(), RecordingChannel()
    scheduler.submit(generation(200, request_id="target"), target)
    scheduler.submit(generation(20, request_id="bystander"), bystander)
    while len(target.sent) < 3:
        time.sleep(0.005)
    scheduler.stop("target")
    target.wait()
    assert target.sent[-1].token_ids is None
    assert len(target.token_ids) < 200
    assert len(bystander.wait().token_ids) == 20
    events.wait_for(Outcome.STOP)


def test_pacing_gives_about_the_configured_tokens_per_second(make_scheduler: MakeScheduler) -> None:
    scheduler = make_scheduler(decode_tokens_per_second=100)
    channel = run(scheduler, generation(21))
    elapsed = channel.sent[-1].at - channel.sent[0].at
    assert 0.19 <= elapsed < 0.6


def test_a_failing_request_ends_alone_and_the_thread_keeps_serving(
    scheduler: Scheduler, events: RecordingEvents
) -> None:
    broken = RecordingChannel(fail_on_send=True)
    healthy = RecordingChannel()
    scheduler.submit(generation(10), broken)
    scheduler.submit(generation(10), healthy)
    assert "the client went away" in (broken.wait().error or "")
    assert len(healthy.wait().token_ids) == 10
    assert len(run(scheduler, generation(4)).token_ids) == 4
    events.wait_for(Outcome.ERROR)


def test_closing_ends_every_open_request_with_an_error(make_scheduler: MakeScheduler) -> None:
    scheduler = make_scheduler(decode_tokens_per_second=100)
    channel = RecordingChannel()
    scheduler.submit(generation(200), channel)
    while not channel.sent:
        time.sleep(0.005)
    scheduler.close()
    assert channel.wait().error == UNLOADING_MESSAGE
    late = RecordingChannel()
    scheduler.submit(generation(4), late)
    assert late.wait().error == UNLOADING_MESSAGE


def test_an_idle_thread_blocks_instead_of_spinning(scheduler: Scheduler) -> None:
    run(scheduler, generation(2))
    time.sleep(0.3)  # OpenBLAS's worker threads spin a while after a matmul, then sleep
    started = time.process_time()
    time.sleep(0.2)
    assert time.process_time() - started < 0.02
