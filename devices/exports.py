import csv
from collections.abc import Iterable, Iterator

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


class _Line:
    def write(self, value: str) -> str:
        return value


def csv_lines(header: list[str], rows: Iterable[Iterable]) -> Iterator[str]:
    """Stream CSV lines, every cell neutralized, without building the file in memory."""
    writer = csv.writer(_Line())
    yield "\ufeff" + writer.writerow(header)  # BOM: Excel then reads UTF-8 correctly
    for row in rows:
        yield writer.writerow([neutralize(cell) for cell in row])
