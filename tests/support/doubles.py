"""Fixtures made of a double: `name = served(SomeDouble, **kwargs)` in a conftest is a module-scoped fixture
`name` that starts the double once for the module's tests and stops it after them."""
import pytest


def served(double_class, **kwargs):
    """A module-scoped fixture yielding a started `double_class(**kwargs)` (pytest names it after the variable
    it is assigned to)."""
    @pytest.fixture(scope="module")
    def fixture():
        with double_class(**kwargs) as double:
            yield double
    return fixture
