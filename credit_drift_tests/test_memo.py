"""The bounded cache behind the per-process reference profile and attribution caches."""

import threading

import pytest

from credit_drift.pipeline.memo import BoundedCache


def test_the_least_recently_used_value_goes_first():
    cache = BoundedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2
    cache.put("a", 10)  # replacing keeps one entry
    assert cache.get("a") == 10 and len(cache) == 2
    cache.clear()
    assert len(cache) == 0 and cache.get("a") is None
    with pytest.raises(ValueError, match="at least one"):
        BoundedCache(0)


def test_concurrent_use_stays_bounded():
    cache = BoundedCache(3)

    def work(k):
        for i in range(2000):
            cache.put((k, i % 7), i)
            cache.get((k, (i + 1) % 7))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(cache) == 3
