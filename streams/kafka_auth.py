"""How every RiskPulse Kafka client authenticates: one place turns the settings into client options.

A bank's brokers never run open: SASL (PLAIN or SCRAM) over plaintext or TLS, or TLS with client
certificates. kafka-python (producers, admin, lag checks) takes keyword options; faust (workers, the
alerts service) takes a credentials object over aiokafka. Both are built here from the same settings,
so a client cannot be added that forgets them, and a failed login is reported as such rather than as
"no broker".
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from riskpulse.core import RiskPulseError
from riskpulse.core.network import is_loopback_address
from riskpulse.core.settings import Settings

log = logging.getLogger("riskpulse.kafka")


class KafkaAuthError(RiskPulseError):
    """The brokers refused this client's credentials, or the settings cannot make any."""


def _uses_sasl(settings: Settings) -> bool:
    return settings.kafka_security_protocol.startswith("SASL_")


def _uses_tls(settings: Settings) -> bool:
    return settings.kafka_security_protocol.endswith("SSL")


def check_settings(settings: Settings) -> None:
    """Refuse combinations that could only fail at the broker, naming the variable to set."""
    if _uses_sasl(settings) and (not settings.kafka_sasl_username or settings.kafka_sasl_password is None):
        raise KafkaAuthError(
            f"RISKPULSE_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs "
            "RISKPULSE_KAFKA_SASL_USERNAME and RISKPULSE_KAFKA_SASL_PASSWORD"
        )
    if (settings.kafka_ssl_certfile is None) != (settings.kafka_ssl_keyfile is None):
        raise KafkaAuthError("a client certificate needs its key: set both RISKPULSE_KAFKA_SSL_CERTFILE and _KEYFILE")
    for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"):
        path = getattr(settings, name)
        if path is not None and _uses_tls(settings) and not path.is_file():
            raise KafkaAuthError(f"RISKPULSE_{name.upper()}={path} is not a readable file")


def kafka_python_options(settings: Settings) -> dict[str, Any]:
    """Keyword options for kafka-python's KafkaProducer, KafkaConsumer and KafkaAdminClient."""
    check_settings(settings)
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if _uses_sasl(settings):
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password.get_secret_value(),
        )
    if _uses_tls(settings):
        options.update(
            ssl_check_hostname=settings.kafka_ssl_check_hostname,
            ssl_cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
            ssl_certfile=str(settings.kafka_ssl_certfile) if settings.kafka_ssl_certfile else None,
            ssl_keyfile=str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
        )
    return options


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """The TLS context aiokafka (under faust) uses: the configured CAs (else the system's), the client cert if any."""
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
    )
    context.check_hostname = settings.kafka_ssl_check_hostname
    if settings.kafka_ssl_certfile:
        context.load_cert_chain(str(settings.kafka_ssl_certfile), str(settings.kafka_ssl_keyfile))
    return context


def faust_credentials(settings: Settings):
    """faust's ``broker_credentials`` for these settings (None for PLAINTEXT)."""
    from faust.auth import SASLCredentials, SSLCredentials

    check_settings(settings)
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    if settings.kafka_security_protocol == "SSL":
        return SSLCredentials(ssl_context(settings))
    return SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value(),
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=ssl_context(settings) if settings.kafka_security_protocol == "SASL_SSL" else None,
    )


def check_login(settings: Settings, timeout_s: float = 10.0) -> None:
    """Log in once to the bootstrap brokers; raise KafkaAuthError at once if one refuses the credentials.

    kafka-python retries a refused login until its bootstrap timeout and then says only "Unable to
    bootstrap", like a broker that is down; a wrong password is not worth 30 s of retries. One
    handshake per client created (milliseconds); PLAINTEXT has nothing to check.
    """
    if settings.kafka_security_protocol == "PLAINTEXT":
        remote = [address for address in settings.bootstrap_servers.split(",") if not is_loopback_address(address)]
        if remote:
            log.warning("Kafka at %s is reached without credentials or TLS (PLAINTEXT): anyone on the network can read "
                        "and write the topics; set RISKPULSE_KAFKA_SECURITY_PROTOCOL", ",".join(remote))
        return
    check_settings(settings)
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # the usual case: called from plain code
        asyncio.run(_check_login(settings, timeout_s))
        return
    with ThreadPoolExecutor(max_workers=1) as pool:  # inside an event loop (an agent, a web view): its own loop
        pool.submit(asyncio.run, _check_login(settings, timeout_s)).result()


async def _check_login(settings: Settings, timeout_s: float) -> None:
    from aiokafka.conn import create_conn
    from aiokafka import errors
    refusals = (errors.AuthenticationFailedError, errors.SaslAuthenticationFailed, errors.IllegalSaslStateError,
                errors.UnsupportedSaslMechanismError, errors.AuthenticationMethodNotSupported)

    sasl = _uses_sasl(settings)
    for address in settings.bootstrap_servers.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            conn = await asyncio.wait_for(create_conn(
                host, int(port), client_id="riskpulse-login-check", request_timeout_ms=int(timeout_s * 1000),
                security_protocol=settings.kafka_security_protocol,
                ssl_context=ssl_context(settings) if _uses_tls(settings) else None,
                sasl_mechanism=settings.kafka_sasl_mechanism if sasl else None,
                sasl_plain_username=settings.kafka_sasl_username if sasl else None,
                sasl_plain_password=settings.kafka_sasl_password.get_secret_value() if sasl else None,
            ), timeout_s)
        except refusals as exc:
            raise KafkaAuthError(
                f"Kafka at {address} refused {describe(settings)}: {exc}; check RISKPULSE_KAFKA_SASL_USERNAME, "
                "_PASSWORD and _MECHANISM"
            ) from exc
        except (OSError, asyncio.TimeoutError, errors.KafkaError) as exc:
            tls = _tls_failure(exc)  # our certificate refused (seen as a closed connection), or theirs not trusted
            if tls is not None:
                raise KafkaAuthError(
                    f"TLS to Kafka at {address} failed ({tls}); check RISKPULSE_KAFKA_SSL_CAFILE, _CERTFILE, _KEYFILE "
                    "and RISKPULSE_KAFKA_SECURITY_PROTOCOL") from exc
            continue  # down or unreachable: the client's own retries report that
        conn.close()
        return


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind ``exc``, if one is (aiokafka reports a rejected client certificate as a closed connection)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ssl.SSLError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def describe(settings: Settings) -> str:
    """Who this client is to the brokers, for errors and logs (never the password)."""
    if _uses_sasl(settings):
        return f"user {settings.kafka_sasl_username!r} ({settings.kafka_security_protocol}, {settings.kafka_sasl_mechanism})"
    return settings.kafka_security_protocol

