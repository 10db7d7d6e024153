"""The asyncio network backend's reads: what is queued goes over in as few reads as the bound allows."""

from __future__ import annotations

import asyncio

from lockman.registry.network_backend import HIGH_WATER, READ_SIZE, _Protocol, _Stream


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.paused = False

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


def _stream() -> tuple[_Stream, _Protocol, _Transport]:
    transport, protocol = _Transport(), _Protocol()
    protocol.connection_made(transport)
    return _Stream(transport, protocol), protocol, transport


def test_queued_chunks_are_joined_up_to_the_read_size() -> None:
    """httpcore asks for 64 KiB; everything queued (up to READ_SIZE) comes back in one read, so
    a blob's bytes cross httpx's stream layers in large pieces, in order and complete."""

    async def main() -> None:
        stream, protocol, _ = _stream()
        pieces = [bytes([i]) * (256 << 10) for i in range(6)]  # asyncio's TLS hands over 256 KiB
        for p in pieces:
            protocol.data_received(p)
        protocol.eof_received()
        reads = []
        while chunk := await stream.read(64 << 10):
            reads.append(chunk)
        assert b"".join(reads) == b"".join(pieces)
        assert [len(r) for r in reads] == [READ_SIZE, 2 * (256 << 10)]
        assert protocol.queued == 0

    asyncio.run(main())


def test_a_chunk_larger_than_the_read_size_goes_whole() -> None:
    async def main() -> None:
        stream, protocol, _ = _stream()
        protocol.data_received(b"x" * (READ_SIZE + 1))
        protocol.data_received(b"y")
        assert await stream.read(64 << 10) == b"x" * (READ_SIZE + 1)
        assert await stream.read(64 << 10) == b"y"

    asyncio.run(main())


def test_reading_resumes_once_half_the_high_water_is_consumed() -> None:
    """The bound on what a slow consumer leaves queued still holds with joined reads."""

    async def main() -> None:
        stream, protocol, transport = _stream()
        chunk = b"z" * (256 << 10)
        while not transport.paused:
            protocol.data_received(chunk)
        assert protocol.queued > HIGH_WATER
        while transport.paused:
            await stream.read(64 << 10)
        assert protocol.queued <= HIGH_WATER // 2

    asyncio.run(main())
