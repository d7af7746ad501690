"""TLS for gRPC env serving: a self-signed certificate made by the test, trusted by the
client, steps like a plain server; a client that does not trust it, or speaks plain text, is
refused with a clear error; a half-given or unreadable certificate is a usage error."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import fugu.vector
from fugu.core.errors import APIUsageError, WorkerError
from fugu.vector.serve import EnvServer

pytest.importorskip("grpc")


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A fresh EC key and a self-signed certificate for ``localhost`` and ``127.0.0.1``."""
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The server's certificate and key, and another self-signed certificate (not its CA)."""
    if shutil.which("openssl") is None:
        pytest.skip("the TLS tests make their certificates with the openssl CLI, not found")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = _self_signed(directory, "server")
    other, _ = _self_signed(directory, "other")
    return cert, key, other


@pytest.fixture
def tls_server(certs: tuple[Path, Path, Path]) -> Iterator[EnvServer]:
    cert, key, _ = certs
    server = EnvServer("cartpole-v1", num_envs=4, tls_cert=cert, tls_key=key)
    server.start()
    yield server
    server.stop()


def test_tls_client_steps_like_a_local_env(
    tls_server: EnvServer, certs: tuple[Path, Path, Path]
) -> None:
    assert tls_server.tls
    remote = fugu.vector.make("cartpole-v1", 4, backend="remote", address=tls_server.address,
                              remote_options={"tls_ca": certs[0]}, batch_size=2)  # fmt: skip
    local = fugu.vector.make("cartpole-v1", 4, backend="native")
    try:
        assert remote.tls
        np.testing.assert_array_equal(remote.reset(seed=3)[0], local.reset(seed=3)[0])
        for actions in np.random.default_rng(0).integers(0, 2, (40, 4)).astype(np.int32):
            for x, y in zip(remote.step(actions)[:4], local.step(actions)[:4]):
                np.testing.assert_array_equal(x, y)
    finally:
        remote.close()
        local.close()


@pytest.mark.parametrize(
    ("options", "match"),
    [({}, "TLS server needs a client with tls_ca"), ("other", "does tls_ca not sign")],
)
def test_untrusted_or_plain_clients_are_refused(
    tls_server: EnvServer, certs: tuple[Path, Path, Path], options: object, match: str
) -> None:
    remote_options: dict[str, object] = {"connect_timeout_s": 1.5}
    if options == "other":
        remote_options["tls_ca"] = certs[2]  # a certificate that did not sign the server's
    with pytest.raises(WorkerError, match=match):
        fugu.vector.make("cartpole-v1", 4, backend="remote", address=tls_server.address,
                         remote_options=remote_options)  # fmt: skip
    assert tls_server.num_sessions == 0


def test_half_or_unreadable_tls_settings_are_usage_errors(
    certs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    cert, key, _ = certs
    with pytest.raises(APIUsageError, match="both tls_cert and tls_key"):
        EnvServer("cartpole-v1", tls_cert=cert)
    with pytest.raises(APIUsageError, match="cannot read the TLS key"):
        EnvServer("cartpole-v1", tls_cert=cert, tls_key=tmp_path / "missing.key")
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(APIUsageError, match="not a PEM file"):
        EnvServer("cartpole-v1", tls_cert=tmp_path / "junk.pem", tls_key=key)
    with pytest.raises(APIUsageError, match="tls=False"):
        fugu.vector.make("cartpole-v1", 4, backend="remote", address="127.0.0.1:1",
                         remote_options={"tls_ca": cert, "tls": False})  # fmt: skip


def test_cli_serves_with_tls(certs: tuple[Path, Path, Path]) -> None:
    cert, key, _ = certs
    command = [sys.executable, "-m", "fugu", "serve", "cartpole-v1", "--port", "0",
               "--num-envs", "2", "--tls-cert", str(cert), "--tls-key", str(key)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "with TLS" in line, line
        address = "127.0.0.1:" + line.strip().rsplit(":", 1)[1]
        env = fugu.vector.make("cartpole-v1", 2, backend="remote", address=address,
                               remote_options={"tls_ca": cert})  # fmt: skip
        assert env.reset(seed=0)[0].shape == (2, 4)
        env.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    half = subprocess.run(command[:-2], capture_output=True, text=True, timeout=120)
    assert half.returncode == 2 and "both tls_cert and tls_key" in half.stderr
