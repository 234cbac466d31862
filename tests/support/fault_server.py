#!/usr/bin/env python3
"""A real SMTP server (aiosmtpd) that stores what it accepts and injects faults.

Used by the delivery tests (tests/delivery). Every accepted message is written
to STORE/NNNNNN.eml (NNNNNN = order of acceptance), with the envelope prepended
as `X-Test-Rcpt-To:` / `X-Test-Mail-From:` / `X-Test-Connection:` header lines,
so the RCPT address and the Message-ID are both recoverable. Files appear
atomically (written as .tmp, then renamed).

The first line on stdout is `LISTENING <port>` once the socket is bound (with
--port 0 the kernel picks a free port). Events go to stderr.

Pipelining (RFC 2920) is announced in EHLO and honoured (commands are read
and answered in order, however many arrive at once); every MAIL is logged,
marked "(pipelined)" when more commands had already arrived behind it, and
a client that sends content before the 354 is logged as "content before
354". With --no-pipelining it is not announced, and a client that sends a
command before the reply to the previous one is refused as Postfix does
("554 5.5.0 Error: SMTP protocol synchronization", logged as "improper
pipelining") and disconnected.

Faults ("the Nth message" counts DATA commands across all connections, from 1):

  --fail-every N --fail-code 451   every Nth message is refused after its DATA
  --reject ADDRESS                 550 on RCPT for that address (repeatable)
  --mail-from-code CODE            answer every MAIL FROM with CODE (e.g. 553:
                                   the server refuses the sender)
  --close-after N                  on each connection, after N accepted
                                   messages, answer the next MAIL with 421
                                   and close the connection
  --down-after N                   once N messages are stored (all connections),
                                   stop listening (new connections are refused)
                                   and answer the next MAIL on each open
                                   connection with 421, then close it: a relay
                                   that goes down mid-run
  --drop-mid-data N                the Nth message: read a line of its content,
                                   then drop the connection (nothing stored)
  --drop-after-store N             the Nth message: store it, then drop the
                                   connection before answering 250 (ambiguous)
  --delay SECONDS                  pause after storing each message, before 250
                                   (the message is kept even if the client dies
                                   during the pause, as a real MTA would)
  --tls-cert PEM --tls-key PEM     STARTTLS, required before MAIL
  --implicit-tls                   with the above: TLS from the first byte
  --auth-user U --auth-password P  require AUTH (PLAIN or LOGIN); 535 if wrong
  --no-pipelining                  do not announce PIPELINING; refuse a client
                                   that pipelines anyway

Options may also come from a JSON file (--config FILE), keys spelled like the
long options with underscores ({"fail_every": 3, "reject": ["a@b.c"]});
command-line options override it.
"""

import argparse
import asyncio
import itertools
import json
import logging
import os
import signal
import ssl
import sys
import warnings

try:
    from aiosmtpd.smtp import SMTP, AuthResult
except ImportError as e:  # the tests turn this into a failure with this text
    sys.stderr.write(
        f"fault_server.py: cannot import aiosmtpd ({e}); install it: python3 -m pip install aiosmtpd\n"
    )
    sys.exit(3)


def log(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


class Counters:
    messages = 0  # DATA commands seen, all connections
    stored = 0  # messages written to the store
    connections = itertools.count(1)
    listener = None  # the listening server, closed by --down-after


class Handler:
    def __init__(self, opts):
        self.opts = opts
        self.rejects = {a.lower() for a in opts.reject}

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # This (5-argument) hook replaces aiosmtpd's own EHLO bookkeeping.
        session.host_name = hostname
        if not self.opts.no_pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.rejects:
            log(f"conn {server.conn_id}: 550 for RCPT {address}")
            return f"550 5.1.1 <{address}>: recipient rejected (injected)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        opts, n = self.opts, server.message_no
        if opts.fail_every and n % opts.fail_every == 0:
            log(f"conn {server.conn_id}: message {n}: {opts.fail_code} (injected)")
            kind = "4.3.0 temporary" if opts.fail_code < 500 else "5.3.0 permanent"
            return f"{opts.fail_code} {kind} failure (injected, message {n})"
        self.store(server, envelope)
        server.accepted += 1
        if opts.drop_after_store == n:
            log(f"conn {server.conn_id}: message {n}: stored, dropping before 250")
            server.transport.abort()
            await asyncio.sleep(3600)  # cancelled when the connection is gone
        if opts.delay:
            await asyncio.sleep(opts.delay)
        return "250 2.0.0 OK: queued"

    def store(self, server, envelope):
        Counters.stored += 1
        name = os.path.join(self.opts.store, f"{Counters.stored:06d}.eml")
        head = (
            f"X-Test-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
            f"X-Test-Mail-From: {envelope.mail_from}\r\n"
            f"X-Test-Connection: {server.conn_id}\r\n"
        ).encode()
        with open(name + ".tmp", "wb") as f:
            f.write(head + envelope.original_content)
        os.rename(name + ".tmp", name)
        log(f"conn {server.conn_id}: message {server.message_no} stored as {name} for {envelope.rcpt_tos}")


class FaultSMTP(SMTP):
    def __init__(self, handler, opts, **kwargs):
        super().__init__(handler, **kwargs)
        self.opts = opts
        self.conn_id = next(Counters.connections)
        self.accepted = 0
        self.message_no = 0

    async def smtp_EHLO(self, hostname):
        log(f"conn {self.conn_id}: EHLO {hostname}")
        await super().smtp_EHLO(hostname)

    async def smtp_HELO(self, hostname):
        log(f"conn {self.conn_id}: HELO {hostname}")
        await super().smtp_HELO(hostname)

    def ahead(self):
        """Whether more input has already arrived behind the current line."""
        return len(self._reader._buffer) > 0

    async def out_of_step(self, command):
        """Without PIPELINING announced, a command sent before the reply to
        the previous one is refused and the client disconnected (Postfix:
        smtpd's synchronization check). True when it was."""
        if not self.opts.no_pipelining or not self.ahead():
            return False
        log(f"conn {self.conn_id}: improper pipelining: more input behind {command}")
        await self.push("554 5.5.0 Error: SMTP protocol synchronization")
        self.transport.close()
        return True

    async def smtp_RSET(self, arg):
        if await self.out_of_step("RSET"):
            return
        await super().smtp_RSET(arg)

    async def smtp_RCPT(self, arg):
        if await self.out_of_step("RCPT"):
            return
        await super().smtp_RCPT(arg)

    async def smtp_MAIL(self, arg):
        if await self.out_of_step("MAIL"):
            return
        log(f"conn {self.conn_id}: MAIL {arg}{' (pipelined)' if self.ahead() else ''}")
        if self.opts.mail_from_code:
            code = self.opts.mail_from_code
            log(f"conn {self.conn_id}: {code} for MAIL {arg}")
            await self.push(f"{code} 5.7.1 sender refused (injected)")
            return
        if self.opts.down_after and Counters.stored >= self.opts.down_after:
            if Counters.listener is not None and Counters.listener.is_serving():
                log(f"down after {Counters.stored} messages: no more connections")
                Counters.listener.close()
            log(f"conn {self.conn_id}: 421 down, closing")
            await self.push("421 4.3.2 service shutting down (injected)")
            self.transport.close()
            return
        if self.opts.close_after and self.accepted >= self.opts.close_after:
            log(f"conn {self.conn_id}: 421 after {self.accepted} messages, closing")
            await self.push("421 4.3.2 too many messages on this connection (injected)")
            self.transport.close()
            return
        await super().smtp_MAIL(arg)

    async def smtp_DATA(self, arg):
        if await self.out_of_step("DATA"):
            return
        if self.ahead():
            # RFC 2920: DATA ends a group; content may follow only its 354.
            log(f"conn {self.conn_id}: content before 354")
        if not self.envelope.rcpt_tos or arg:
            return await super().smtp_DATA(arg)  # its own error replies
        await self.take_data(arg)
        if self.ahead():
            # Pipelining with the content first in a group (RFC 2920 §3.1).
            log(f"conn {self.conn_id}: next envelope behind the content")

    async def take_data(self, arg):
        Counters.messages += 1
        self.message_no = Counters.messages
        if self.opts.drop_mid_data == self.message_no:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.readuntil(b"\r\n")
            log(f"conn {self.conn_id}: message {self.message_no}: dropping mid-DATA")
            self.transport.abort()
            return
        await super().smtp_DATA(arg)


def parse_options(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", help="JSON file of options")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--store", help="folder for accepted messages (required)")
    p.add_argument("--fail-every", type=int, default=0)
    p.add_argument("--fail-code", type=int, default=451)
    p.add_argument("--reject", action="append", default=[])
    p.add_argument("--mail-from-code", type=int, default=0)
    p.add_argument("--close-after", type=int, default=0)
    p.add_argument("--down-after", type=int, default=0)
    p.add_argument("--drop-mid-data", type=int, default=0)
    p.add_argument("--drop-after-store", type=int, default=0)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--implicit-tls", action="store_true")
    p.add_argument("--auth-user")
    p.add_argument("--auth-password")
    p.add_argument("--no-pipelining", action="store_true")
    first = p.parse_args(argv)
    if first.config:
        with open(first.config, encoding="utf-8") as f:
            p.set_defaults(**json.load(f))
    opts = p.parse_args(argv)
    if not opts.store:
        p.error("--store is required")
    if bool(opts.tls_cert) != bool(opts.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if opts.implicit_tls and not opts.tls_cert:
        p.error("--implicit-tls needs --tls-cert and --tls-key")
    if bool(opts.auth_user) != bool(opts.auth_password):
        p.error("--auth-user and --auth-password go together")
    return opts


def authenticator(opts):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            auth_data.login.decode() == opts.auth_user
            and auth_data.password.decode() == opts.auth_password
        )
        log(f"conn {server.conn_id}: AUTH {mechanism} as {auth_data.login.decode()!r}: {'ok' if ok else 'refused'}")
        # handled=False: aiosmtpd itself answers 535 on failure.
        return AuthResult(success=ok, handled=False)

    return check


async def serve(opts):
    os.makedirs(opts.store, exist_ok=True)
    handler = Handler(opts)
    context = None
    if opts.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(opts.tls_cert, opts.tls_key)
    kwargs = dict(hostname="fault-server.test", timeout=60)
    if context and not opts.implicit_tls:
        kwargs.update(tls_context=context, require_starttls=True)
    if opts.auth_user:
        kwargs.update(
            authenticator=authenticator(opts),
            auth_required=True,
            auth_require_tls=False,
        )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: FaultSMTP(handler, opts, loop=loop, **kwargs),
        opts.host,
        opts.port,
        ssl=context if opts.implicit_tls else None,
    )
    Counters.listener = server
    port = server.sockets[0].getsockname()[1]
    print(f"LISTENING {port}", flush=True)
    shown = {k: ("***" if k == "auth_password" and v else v) for k, v in vars(opts).items()}
    log(f"listening on {opts.host}:{port}, options {shown}")
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    async with server:
        await stop


if __name__ == "__main__":
    warnings.simplefilter("ignore")  # aiosmtpd warns about AUTH without TLS
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    asyncio.run(serve(parse_options(sys.argv[1:])))
