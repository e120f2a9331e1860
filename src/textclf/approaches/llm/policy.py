"""Where the reviews and the API key may go, and where the key comes from.

- `base_url` must be https, or http to a loopback host (check_base_url): plain http elsewhere
  would send the reviews and the key unencrypted.
- The key is read from the environment or .env, only from a variable in `KeyVar`, never from
  params; GROQ_API_KEY only ever goes to api.groq.com (check_api_key_env).
- The groq SDK is always given a base_url (GROQ_URL by default): it would otherwise read
  GROQ_BASE_URL from the environment.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit

from textclf.approaches.llm.settings import KeyVar, Provider, Settings

GROQ_HOST = "api.groq.com"
GROQ_URL = f"https://{GROQ_HOST}"
NO_KEY = "no-key-needed"  # the groq SDK insists on a key; llama.cpp ignores it


def check_base_url(url: str | None) -> None:
    """Refuse a base_url the reviews (and the API key) would travel to in clear text: it must
    be https, or http to a loopback host (127.0.0.0/8, ::1, localhost)."""
    if url is None:
        return
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not host or parts.scheme not in ("https", "http") or (parts.scheme == "http" and not loopback):
        raise ValueError(f"llm.base_url={url!r}: use an https:// URL, or http:// to a server on this machine "
                         "(127.0.0.1, ::1 or localhost); plain http elsewhere would send the reviews and the API key "
                         "unencrypted.")


def check_api_key_env(s: Settings) -> str:
    """The variable the API key is read from. GROQ_API_KEY holds a key for Groq: it is only
    ever sent to GROQ_HOST, so a groq provider pointed at another base_url must read its key
    from TEXTCLF_LLM_API_KEY (a params file cannot send the Groq key to a host of its choice)."""
    var = s.api_key_env
    url = s.base_url
    if var is KeyVar.GROQ_API_KEY and s.provider is not Provider.local and url and urlsplit(str(url)).hostname != GROQ_HOST:
        raise ValueError(f"llm.base_url={url!r} is not Groq's API ({GROQ_HOST}): GROQ_API_KEY is only sent to "
                         f"{GROQ_HOST}. Put that server's key in TEXTCLF_LLM_API_KEY (environment or .env) and set "
                         "llm.api_key_env=TEXTCLF_LLM_API_KEY, or set llm.base_url=null to use Groq.")
    return var.value


def api_key(s: Settings, root: Path) -> str:
    """The API key from the environment or `root`/.env (checked by check_api_key_env first)."""
    var = check_api_key_env(s)
    if s.provider is Provider.local:
        return NO_KEY
    key = os.environ.get(var)
    if not key and (root / ".env").is_file():
        from dotenv import dotenv_values

        key = dotenv_values(root / ".env").get(var)
    if not key:
        raise RuntimeError(f"llm.provider={s.provider.value}: set {var} in the environment or in .env "
                           "(it is never read from params)")
    return key
