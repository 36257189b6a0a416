"""Languages: Babel message catalogues, and dates as people in Guangzhou read them.

Two languages: Chinese (``zh``, the dashboard's default) and English (``en``).
Text is written in English in the code and looked up in
``workflows/locale/<lang>/LC_MESSAGES/<domain>.po``, one catalogue per domain:
``messages`` (the dashboard's labels) and ``explanations`` (conflict
explanations, SPEC §12).  Catalogues are compiled in memory the first time a
language is asked for, so there is no build step; an English catalogue may be
absent (a message is its own English text).  Placeholders are Python's
``%(name)s``, as gettext tools expect.

Dates and times are shown in Asia/Shanghai; an ISO week is shown as the dates
it spans.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from gettext import NullTranslations
from io import BytesIO
from pathlib import Path

from babel.core import Locale, negotiate_locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from domain.shanghai_calendar import SHANGHAI, shanghai_time
from domain.windows import week_dates

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
LOCALE_DIR = Path(__file__).with_name("locale")
_BABEL_LOCALE = {"zh": "zh_Hans_CN", "en": "en_GB"}


@dataclass(frozen=True)
class Punctuation:
    """How a language punctuates what the code puts together (explanations, pages)."""

    colon: str
    """Between a label and what it labels."""
    semi: str
    """Between the items of a list whose items hold commas or colons."""
    comma: str
    enum: str
    """Between the items of a list of names (Chinese takes the enumeration comma, 、)."""
    gap: str
    """Between two sentences (a Chinese full stop takes no space after it)."""
    brackets: tuple[str, str]
    """Around an aside after what it qualifies (``paren``)."""

    def paren(self, text: object) -> str:
        """An aside: ``（…）`` in Chinese, `` (…)`` in English."""
        return f"{self.brackets[0]}{text}{self.brackets[1]}"


PUNCTUATION = {
    "zh": Punctuation(colon="：", semi="；", comma="，", enum="、", gap="", brackets=("（", "）")),
    "en": Punctuation(colon=": ", semi="; ", comma=", ", enum=", ", gap=" ",
                      brackets=(" (", ")")),
}


@cache
def translations(language: str, domain: str = "messages") -> NullTranslations:
    """The compiled catalogue of ``domain`` in ``language`` (identity when there is none)."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po"
    if language not in LANGUAGES or not path.exists():
        return NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=_BABEL_LOCALE[language], domain=domain)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=domain)


def gettext(language: str, message: str, domain: str = "messages", **values: object) -> str:
    """``message`` in ``language``, with ``%(name)s`` placeholders filled from ``values``."""
    text = translations(language, domain).gettext(message)
    return text % values if values else text


def ngettext(
    language: str, singular: str, plural: str, count: int, domain: str = "messages",
    **values: object,
) -> str:
    text = translations(language, domain).ngettext(singular, plural, count)
    return text % {"count": count, **values}


def negotiate(accept_language: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """The language an ``Accept-Language`` header prefers among ours, else ``default``."""
    if not accept_language:
        return default
    preferred = []
    for part in accept_language.split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            preferred.append((quality, tag.strip().replace("-", "_")))
    preferred.sort(key=lambda entry: -entry[0])
    chosen = negotiate_locale([tag for _, tag in preferred], list(LANGUAGES), sep="_")
    if chosen is None:
        for _, tag in preferred:
            if tag.split("_")[0].lower() in LANGUAGES:
                return tag.split("_")[0].lower()
        return default
    return chosen.split("_")[0]


def locale_of(language: str) -> Locale:
    return Locale.parse(_BABEL_LOCALE.get(language, _BABEL_LOCALE["en"]))


def show_time(moment: datetime | str | None, language: str) -> str:
    """A moment as a person in Guangzhou reads it, e.g. ``2008年6月12日 17:00``."""
    if moment is None:
        return ""
    local = shanghai_time(moment)
    if language == "zh":
        return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"
    return format_datetime(local, "d MMM y HH:mm", tzinfo=SHANGHAI, locale=locale_of("en"))


def show_date(day: date | str, language: str) -> str:
    if isinstance(day, str):
        day = date.fromisoformat(day)
    if language == "zh":
        return f"{day.year}年{day.month}月{day.day}日"
    return format_date(day, "d MMM y", locale=locale_of("en"))


def show_hours(hours: float | None, places: int = 6) -> str:
    """Hours as a person writes them, to ``places`` decimals at most: 28, 12.5 (not 28.0);
    none as nothing."""
    if hours is None:
        return ""
    return f"{hours:.{places}f}".rstrip("0").rstrip(".")


def show_weeks(first: str, last: str | None, language: str) -> str:
    """ISO weeks ``first`` to ``last`` as the dates they span, e.g. ``9 Jun 2008 – 22 Jun 2008``."""
    start, _ = week_dates(first)
    _, end = week_dates(last or first)
    separator = "至" if language == "zh" else " – "
    return f"{show_date(start, language)}{separator}{show_date(end, language)}"
