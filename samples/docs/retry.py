"""Client-side helper: call the agentd API and retry politely when rate limited."""

import time
import urllib.request


class RateLimited(Exception):
    """Raised when agentd answers 429 Too Many Requests too many times."""


def backoff_delays(base=0.5, factor=2.0, attempts=5):
    """Yield the delays between attempts: 0.5 s, 1 s, 2 s, 4 s, ..."""
    delay = base
    for _ in range(attempts):
        yield delay
        delay *= factor


def get_with_retry(url, api_key):
    """GET a URL of agentd, waiting for Retry-After when the rate limit is hit."""
    for delay in backoff_delays():
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {api_key}"})
        try:
            with urllib.request.urlopen(request) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            if error.code != 429:
                raise
            time.sleep(float(error.headers.get("Retry-After", delay)))
    raise RateLimited(url)
