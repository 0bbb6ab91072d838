"""Text-like field types: text, long_text, email, url, phone and address."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import phonenumbers
import sqlalchemy as sa

from . import register
from .base import TEXT_OPS, Field, FieldType, FieldValueError, ensure_str

if TYPE_CHECKING:
    from faker import Faker

# A pragmatic address check: one @, a dot in the domain, no spaces. Full RFC
# 5322 parsing accepts addresses no mail server delivers to.
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class TextType(FieldType):
    operators = TEXT_OPS
    searchable = True
    default_max_length = 10_000

    def sql_type(self, f: Field) -> sa.types.TypeEngine[Any]:
        return sa.Text()

    def parse(self, f: Field, value: Any) -> str | None:
        if value is None:
            return None
        text = ensure_str(value)
        if "\x00" in text:  # no database keeps it the same way (PostgreSQL refuses it)
            raise FieldValueError("contains a NUL character")
        text = text.strip() if "\n" not in text else text
        if not text:
            return None
        limit = f.options.get("max_length", self.default_max_length)
        if len(text) > limit:
            raise FieldValueError(f"is {len(text)} characters long; at most {limit} allowed")
        return self.normalise(f, text)

    def normalise(self, f: Field, text: str) -> str:
        return text

    def mask(self, f: Field, value: Any) -> Any:
        if value is None:
            return None
        text = str(value)
        return text[:1] + "*" * min(max(len(text) - 1, 2), 8)


@register
class Text(TextType):
    name = "text"
    default_max_length = 1_000

    def sample(self, f: Field, fake: Faker) -> str:
        return fake.sentence(nb_words=3).rstrip(".")


@register
class LongText(TextType):
    name = "long_text"
    can_be_unique = False

    def sample(self, f: Field, fake: Faker) -> str:
        return fake.paragraph(nb_sentences=3)

    def mask(self, f: Field, value: Any) -> Any:
        return None if value is None else "••••"


@register
class Address(TextType):
    """A postal address kept as free text; personal data by default."""

    name = "address"
    default_sensitivity = "personal"
    can_be_unique = False

    def sample(self, f: Field, fake: Faker) -> str:
        return fake.address().replace("\n", " ")

    def mask(self, f: Field, value: Any) -> Any:
        return None if value is None else str(value)[:3] + "****"


@register
class Email(TextType):
    name = "email"
    default_sensitivity = "personal"
    default_max_length = 320

    def normalise(self, f: Field, text: str) -> str:
        if not EMAIL_RE.match(text):
            raise FieldValueError("is not an email address (expected name@example.com)")
        # Lower-cased whole: mail systems treat addresses case-blind, and so must
        # uniqueness, blind indexes and data-subject lookups.
        return text.lower()

    def sample(self, f: Field, fake: Faker) -> str:
        return fake.unique.email() if hasattr(fake, "unique") else fake.email()

    def mask(self, f: Field, value: Any) -> Any:
        if value is None:
            return None
        local, _, domain = str(value).rpartition("@")
        return f"{local[:1]}***@{domain}"


@register
class Url(TextType):
    name = "url"
    default_max_length = 2_048

    def normalise(self, f: Field, text: str) -> str:
        if "://" not in text:
            text = "https://" + text
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or "." not in parts.netloc or " " in text:
            raise FieldValueError("is not a web address (expected https://example.com/...)")
        return text

    def sample(self, f: Field, fake: Faker) -> str:
        return fake.url()

    def mask(self, f: Field, value: Any) -> Any:
        return None if value is None else urlsplit(str(value)).scheme + "://****"


_TYPE_DESCS = (
    "premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan",
    "voicemail", "fixed_line", "mobile",
)
_PLAIN_NUMBER = re.compile(r"^\+?[0-9]{6,17}$")


@functools.lru_cache(maxsize=512)
def _region_validator(country_code: int) -> Callable[[str], bool] | None:
    """A fast validity check built from phonenumbers' own metadata for one country code.

    It answers what ``is_valid_number`` answers for a bare national number: the
    general pattern matches and so does the pattern of some number type. Only
    country codes served by a single region qualify (numbers of shared codes
    like +1 need the library's region detection).
    """
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    if len(regions) != 1:
        return None
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(regions[0])
    if metadata is None or metadata.general_desc is None or not metadata.general_desc.national_number_pattern:
        return None
    general = re.compile(metadata.general_desc.national_number_pattern)
    lengths = set(metadata.general_desc.possible_length or ())
    kinds = []
    for name in _TYPE_DESCS:
        desc = getattr(metadata, name, None)
        if desc is not None and desc.national_number_pattern:
            kinds.append((re.compile(desc.national_number_pattern), set(desc.possible_length or ()) or lengths))

    def valid(national: str) -> bool:
        if len(national) not in lengths or not general.fullmatch(national):
            return False
        return any(len(national) in allowed and pattern.fullmatch(national) for pattern, allowed in kinds)

    return valid


def _fast_e164(text: str, region: str) -> str | None:
    """E.164 for plain digit strings without calling the full parser; ``None`` means "ask it"."""
    if not _PLAIN_NUMBER.match(text):
        return None
    if text.startswith("+"):
        digits = text[1:]
        for size in (1, 2, 3):
            code = int(digits[:size])
            if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
                national = digits[size:]
                break
        else:
            return None
    else:
        code = phonenumbers.country_code_for_region(region)
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if not code or metadata is None or (metadata.national_prefix and text.startswith(metadata.national_prefix)):
            return None  # a trunk prefix to strip: the full parser knows the rules
        national = text
    if national.startswith("0"):
        return None  # Italian-style leading zeros are kept by the parser's own rules
    validator = _region_validator(code)
    if validator is None:
        return None
    return f"+{code}{national}" if validator(national) else None


@register
class Phone(TextType):
    """Phone numbers, normalised to E.164; numbers without ``+`` use the field's region."""

    name = "phone"
    default_sensitivity = "personal"
    default_max_length = 64
    default_region = "CN"

    def normalise(self, f: Field, text: str) -> str:
        region = f.options.get("region") or self.default_region
        fast = _fast_e164(text, region)
        if fast is not None:
            return fast
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            raise FieldValueError("is not a phone number") from None
        if not phonenumbers.is_valid_number(number):
            raise FieldValueError(f"is not a valid phone number for region {region} (use +country code)")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def parse_filter_value(self, f: Field, op: str, value: Any) -> Any:
        # A partial number ("138") is a fine thing to search for.
        if op in ("contains", "starts_with"):
            return ensure_str(value).strip()
        return super().parse_filter_value(f, op, value)

    def sample(self, f: Field, fake: Faker) -> str:
        region = f.options.get("region") or self.default_region
        for _ in range(50):
            candidate = fake.phone_number()
            try:
                return self.normalise(f, candidate)
            except FieldValueError:
                continue
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        if example is None:
            raise FieldValueError(f"no sample phone number for region {region}")
        return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)

    def mask(self, f: Field, value: Any) -> Any:
        """``+8613812345678`` → ``+86 138****5678``: country code, first three, last four."""
        if value is None:
            return None
        try:
            number = phonenumbers.parse(str(value), None)
            national = str(number.national_number)
            country = f"+{number.country_code} "
        except phonenumbers.NumberParseException:
            national, country = str(value).lstrip("+"), ""
        if len(national) <= 7:
            return country + national[:2] + "****"
        return f"{country}{national[:3]}****{national[-4:]}"
