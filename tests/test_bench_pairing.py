"""The chat benchmark's paired latency: the fake Gemini server's record of each streamed
request, matched to the client's by the reference in its message."""

from __future__ import annotations

from bench.bench_chat import direct, own_s, paired_added, server_times
from vibe_dev.fake_gemini import FakeGemini


async def test_each_request_is_paired_with_the_servers_own_time(fake: FakeGemini) -> None:
    fake.latency_s = 0.2
    fake.chunk_delay_s = 0.01
    # As the benchmark does: the process's first request pays the SDK's one-time set-up (0.2 s
    # once seen on a loaded machine), which is not what the pairing is about.
    await direct(fake.url, "bench-key", 1, 1, 0.0)
    timings = await direct(fake.url, "bench-key", 4, 2, 0.0)
    server = await server_times(fake.url)
    assert len(timings.first_at) == 8 and set(timings.first_at) <= set(server)
    own = own_s(timings, server)
    assert len(own) == 8
    # The client's time to the first chunk less the server's own 0.2 s: what the client
    # library and the loopback add, a few milliseconds, never the server's latency.
    assert all(0.0 <= x < 0.1 for x in own), own
    for ref in timings.first_at:
        arrived, first = server[ref]
        assert first - arrived >= 0.2 and arrived >= timings.sent[ref]
    paired = paired_added(own, own)
    assert paired["pairs"] == 8 and abs(paired["p50"]) < 1e-6


async def test_a_server_that_keeps_no_record_pairs_nothing(fake: FakeGemini) -> None:
    # Another Gemini-compatible server (bench_chat --llm-url) has no /_fake/streams.
    assert await server_times(f"{fake.url}/elsewhere") == {}
    paired = paired_added([], [0.01])
    assert paired["pairs"] == 0 and all(paired[q] != paired[q] for q in ("p50", "p90", "p99"))  # NaN: no figure
