"""Regenerate examples/recipients.csv (deterministic): valid Indian mobile numbers written in
several formats, plus invalid rows and duplicates, as an operator's export would have."""

from __future__ import annotations

import csv
import random
from pathlib import Path

NAMES = ["Asha", "Ravi", "Meera", "Arjun", "Priya", "Kabir", "Neha", "Vikram", "Sara", "Dev"]
INVALID = ["12345", "not-a-number", "+91 12345", "98765", "0000000000", "+1 555 0100",
           "9876543", "abc9876543210", "+91 5555 55555", "11111 11111", "++919876543210",
           "+44 7911", "phone?", "919", "+91 98765 4321"]  # fmt: skip


def main() -> None:
    rng = random.Random(2026)
    numbers: list[str] = []
    while len(numbers) < 480:
        digits = str(rng.choice("6789")) + "".join(str(rng.randrange(10)) for _ in range(9))
        if digits not in numbers:
            numbers.append(digits)
    rows: list[tuple[str, str]] = []
    for index, digits in enumerate(numbers):
        style = index % 4
        if style == 0:
            written = digits
        elif style == 1:
            written = f"+91 {digits[:5]} {digits[5:]}"
        elif style == 2:
            written = f"91{digits}"
        else:
            written = f"0{digits}"
        rows.append((written, NAMES[index % len(NAMES)]))
    for digits in numbers[:20]:  # the same person twice, written another way
        rows.append((f"+91-{digits}", "Duplicate"))
    for value in INVALID:
        rows.append((value, "Invalid"))
    rng.shuffle(rows)
    path = Path(__file__).with_name("recipients.csv")
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "name"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {path}")


if __name__ == "__main__":
    main()
