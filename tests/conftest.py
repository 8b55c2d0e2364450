pytest_plugins = [
    "tests.triton_fixtures",
    "tests.gateway_fixtures",
    "tests.redis_server",
    "tests.tiers",
    "tests.workers",
]
