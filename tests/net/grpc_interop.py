#!/usr/bin/env python3
"""gRPC interop: Debian's python3-grpcio (gRPC core) as the client of coffer's
server, started by test_net.c (test_grpc_interop) with its test handlers.
    grpc_interop.py PORT CA_PEM
Exits 0 when every check passes; prints the first failure otherwise."""
import sys

import grpc

port, ca = sys.argv[1], sys.argv[2]
creds = grpc.ssl_channel_credentials(open(ca, "rb").read())
opts = [("grpc.max_receive_message_length", 8 << 20), ("grpc.max_send_message_length", 8 << 20)]
ch = grpc.secure_channel(f"127.0.0.1:{port}", creds, options=opts)
echo = ch.unary_unary("/test.Echo/Echo")  # bytes in, bytes out

def expect_error(fn, code, details=None, timeout=5, **kw):
    try:
        fn(b"abc", timeout=timeout, **kw)
    except grpc.RpcError as e:
        assert e.code() == code, (e.code(), e.details())
        if details is not None:
            assert e.details() == details, repr(e.details())
        return
    raise AssertionError(f"no error, expected {code}")

assert echo(b"hello", timeout=5) == b"hello"
assert echo(b"", timeout=5) == b""
big = bytes(range(256)) * 4096  # 1 MiB
assert echo(big, timeout=10) == big
assert echo(big, timeout=10, compression=grpc.Compression.Gzip) == big
# deflate is not offered: the server answers UNIMPLEMENTED, which the client reports
expect_error(echo, grpc.StatusCode.UNIMPLEMENTED, compression=grpc.Compression.Deflate, timeout=5)
expect_error(ch.unary_unary("/test.Echo/Fail"), grpc.StatusCode.INVALID_ARGUMENT, "bad input: 100% wrong\nline")
expect_error(ch.unary_unary("/no.Such/Method"), grpc.StatusCode.UNIMPLEMENTED)
expect_error(ch.unary_unary("/test.Echo/Sleep"), grpc.StatusCode.DEADLINE_EXCEEDED, timeout=0.05)
assert ch.unary_unary("/test.Echo/Sleep")(b"slow", timeout=5) == b"slow"
toolarge = b"y" * (5 << 20)  # over the server's 4 MiB message cap
try:
    echo(toolarge, timeout=10)
    raise AssertionError("5 MiB message accepted")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (e.code(), e.details())
# many calls on one channel, concurrently
futs = [echo.future(b"m%d" % i, timeout=10) for i in range(200)]
assert [f.result() for f in futs] == [b"m%d" % i for i in range(200)]
ch.close()
print("grpc interop: ok")
