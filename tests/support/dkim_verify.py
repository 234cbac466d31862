"""Verifies the DKIM signature of one message with dkimpy, an independent
implementation: `dkim_verify.py MESSAGE_FILE TXT_RECORD`.

The DNS lookup of `<selector>._domainkey.<domain>` is answered with
TXT_RECORD (`v=DKIM1; k=rsa; p=...` or `k=ed25519`), so no network is used.
Exit 0 and `pass` when the signature verifies; exit 1 and `fail` (with
dkimpy's reasons) when it does not; exit 2 on bad usage.
"""

import logging
import sys

import dkim


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], "rb") as f:
        message = f.read()
    record = argv[2].encode()
    if b"k=ed25519" in record:
        try:
            import nacl  # noqa: F401  (dkimpy's Ed25519 needs it, else it just fails)
        except ImportError:
            print("Ed25519 needs PyNaCl: pip install pynacl", file=sys.stderr)
            return 2
    asked = []

    def dnsfunc(name, timeout=5):
        asked.append(name)
        return record

    logger = logging.getLogger("dkim_verify")
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG, format="%(message)s")
    ok = dkim.verify(message, logger=logger, dnsfunc=dnsfunc)
    print("pass" if ok else "fail", "(asked for", b", ".join(asked).decode() + ")")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
