pytest_plugins = ["tests.triton_fixtures", "tests.gateway_fixtures"]
