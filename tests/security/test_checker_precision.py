"""Finding 12: the checker's 1e-6 relative tolerance accepted 54930145.9 for a gold of
54930138.9 (dev_0726: Asia and Europe's total surface area), a different number. Floats
now match to the noise of a computed value, or to the precision the answer wrote.
"""

from __future__ import annotations

import pytest
from sqlenv_core.checker import check_answer


@pytest.mark.parametrize(
    ("answer", "gold", "correct"),
    [
        ("54930145.9", 54930138.9, False),  # dev_0726: off by 7 km²
        ("54930138.95", 54930138.9, False),  # wrong at the precision it wrote
        ("54930138.9", 54930138.9, True),
        ("54930138.900000006", 54930138.9, True),  # float noise of another summation
        ("1000000.5", 1000000.0, False),
        ("0.30000000000000004", 0.3, True),
        ("3.33", 3.3333333333, True),  # rounded to the two decimals it wrote
        ("3.34", 3.3333333333, False),
    ],
)
def test_floats_match_at_the_precision_they_carry(answer: str, gold: float, correct: bool) -> None:
    assert check_answer(answer, [[gold]], order_matters=False).correct is correct
