"""The versions of one template and the rules for changing them (spec §2.2, §7).

Theory of operation. A template identifier holds versions 1..n (:class:`TemplateHistory`):

* Only the newest version may be a **draft**. A draft accepts no registrations and is edited
  in place (:meth:`~TemplateHistory.revise` and the attribute helpers), keeping its number.
* **Publishing** makes the draft immutable and the template's *current* version: new
  registrations and modifications validate against it (:meth:`~TemplateHistory.for_write`).
  A draft needs at least one enabled attribute to be published.
* To change a published template, :meth:`~TemplateHistory.new_version` opens version n+1 as
  a draft copy of the current one. Older versions stay as they were, so data registered
  against them can still be read against its own definition.
* Attributes are **never deleted** once a version holding them was published: every attribute
  of version n is in version n+1 with the same key, index, type and multiplicity. It can be
  disabled (refusing new values), re-enabled, relabelled, or have its constraints changed.
  Attributes that only a draft has may be removed again before it is published.
* **Withdrawing** marks the current version withdrawn: existing data stays valid and can
  still be modified, but no new identifier may be registered (see
  :mod:`idnode.industry.validate`). Publishing again lifts that (or publishes a newer draft).

Each operation returns a new history or raises
:class:`~idnode.industry.model.InvalidTemplate` saying which rule it breaks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from idnode.industry.layout import MAX_VERSION
from idnode.industry.model import Attribute, InvalidTemplate, Template, TemplateStatus

__all__ = ["TemplateHistory", "check_successor", "check_transition", "merge_attributes"]


def check_successor(previous: Template, following: Template) -> None:
    """Raise :class:`InvalidTemplate` unless ``following`` may follow the published
    ``previous`` (same id, next number, no attribute removed or retyped)."""
    if following.id != previous.id:
        raise InvalidTemplate(f"version of {following.id!r} cannot follow {previous.id!r}")
    if following.version != previous.version + 1:
        raise InvalidTemplate(
            f"version {following.version} cannot follow version {previous.version}"
        )
    for old in previous.attributes:
        new = following.attribute(old.key)
        if new is None or new.key != old.key:
            raise InvalidTemplate(
                f"attribute {old.key!r} of version {previous.version} cannot be removed; "
                "disable it instead"
            )
        if (new.index, new.type, new.multiple) != (old.index, old.type, old.multiple):
            raise InvalidTemplate(
                f"attribute {old.key!r} keeps index {old.index}, type {old.type} and "
                f"multiple={old.multiple} in later versions"
            )


def check_transition(old: TemplateHistory, new: TemplateHistory) -> None:
    """Raise :class:`InvalidTemplate` unless replacing the stored ``old`` by ``new`` (a whole
    template record written at once, e.g. over the native protocol) is something the
    operations of :class:`TemplateHistory` could have done: no version removed, a
    non-draft version unchanged except for withdrawing or re-publishing it; the old draft
    may have been revised or published, and versions appended."""
    if new.id != old.id:
        raise InvalidTemplate(f"{new.id!r} cannot replace {old.id!r}")
    if len(new.versions) < len(old.versions):
        raise InvalidTemplate("template versions are never removed")
    for before, after in zip(old.versions, new.versions, strict=False):
        if before.status is TemplateStatus.DRAFT:
            continue
        if after.replace(status=before.status) != before:
            raise InvalidTemplate(f"version {before.version} is {before.status} and immutable")
        if after.status is TemplateStatus.DRAFT:
            raise InvalidTemplate(f"version {before.version} cannot become a draft again")


def merge_attributes(template: Template, updates: Iterable[Attribute]) -> Template:
    """SNMS incremental edit: an update whose key (ignoring case) names an attribute replaces
    it (same index required), any other is added (its index must be free)."""
    attributes = list(template.attributes)
    for update in updates:
        position = next(
            (n for n, a in enumerate(attributes) if a.key.casefold() == update.key.casefold()),
            None,
        )
        if position is None:
            attributes.append(update)
            continue
        if attributes[position].index != update.index:
            raise InvalidTemplate(
                f"attribute {update.key!r} is at index {attributes[position].index}, "
                f"not {update.index}"
            )
        attributes[position] = update
    return template.with_attributes(attributes)


@dataclass(frozen=True, slots=True)
class TemplateHistory:
    """Every version of one template, oldest first (see the module docstring)."""

    versions: tuple[Template, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "versions", tuple(self.versions))
        if not self.versions:
            raise InvalidTemplate("a template has at least one version")
        for number, template in enumerate(self.versions, start=1):
            if template.version != number:
                raise InvalidTemplate(f"version {template.version} found where {number} belongs")
            if template.status is TemplateStatus.DRAFT and number != len(self.versions):
                raise InvalidTemplate(f"version {number} is a draft but not the newest")
        for previous, following in zip(self.versions, self.versions[1:], strict=False):
            check_successor(previous, following)

    @classmethod
    def start(cls, template: Template) -> TemplateHistory:
        """A new template whose first version is ``template`` (version 1, not withdrawn)."""
        if template.version != 1:
            raise InvalidTemplate("a new template starts at version 1")
        if template.status is TemplateStatus.WITHDRAWN:
            raise InvalidTemplate("a new template cannot start withdrawn")
        if template.status is TemplateStatus.PUBLISHED:
            _check_publishable(template)
        return cls((template,))

    # -- reading -------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.versions[0].id

    @property
    def latest(self) -> Template:
        """The newest version (maybe a draft)."""
        return self.versions[-1]

    @property
    def current(self) -> Template | None:
        """The newest published or withdrawn version; None if only a draft exists."""
        for template in reversed(self.versions):
            if template.status is not TemplateStatus.DRAFT:
                return template
        return None

    @property
    def draft(self) -> Template | None:
        latest = self.latest
        return latest if latest.status is TemplateStatus.DRAFT else None

    def version(self, number: int) -> Template:
        """Version ``number``; :class:`InvalidTemplate` if there is none."""
        if not 1 <= number <= len(self.versions):
            raise InvalidTemplate(f"template {self.id!r} has no version {number}")
        return self.versions[number - 1]

    def for_write(self) -> Template:
        """The version a registration or modification is validated against: the current one,
        or the draft when nothing was published yet (validation then refuses the write)."""
        return self.current or self.latest

    # -- changing ------------------------------------------------------------------------------
    def revise(self, template: Template) -> TemplateHistory:
        """Replace the draft by ``template`` (same version, still a draft)."""
        draft = self._need_draft()
        if template.id != draft.id or template.version != draft.version:
            raise InvalidTemplate(f"only draft version {draft.version} can be revised")
        if template.status is not TemplateStatus.DRAFT:
            raise InvalidTemplate("revise keeps the draft a draft; publish it afterwards")
        return TemplateHistory((*self.versions[:-1], template))

    def new_version(self) -> TemplateHistory:
        """Open the next version as a draft copy of the newest one."""
        if self.draft is not None:
            raise InvalidTemplate(f"version {self.latest.version} is still a draft")
        if self.latest.version >= MAX_VERSION:
            raise InvalidTemplate(f"a template has at most {MAX_VERSION} versions")
        following = self.latest.replace(
            version=self.latest.version + 1, status=TemplateStatus.DRAFT
        )
        return TemplateHistory((*self.versions, following))

    def publish(self) -> TemplateHistory:
        """Publish the draft, or publish a withdrawn current version again."""
        target = self.draft or self.current
        if target is None or target.status is TemplateStatus.PUBLISHED:
            raise InvalidTemplate(f"template {self.id!r} has nothing to publish")
        _check_publishable(target)
        return self._replace_version(target.replace(status=TemplateStatus.PUBLISHED))

    def withdraw(self) -> TemplateHistory:
        """Withdraw the current version (it must be published)."""
        current = self.current
        if current is None or current.status is not TemplateStatus.PUBLISHED:
            raise InvalidTemplate(f"template {self.id!r} has no published version to withdraw")
        return self._replace_version(current.replace(status=TemplateStatus.WITHDRAWN))

    def add_attribute(self, attribute: Attribute) -> TemplateHistory:
        """Add ``attribute`` to the draft."""
        draft = self._need_draft()
        return self.revise(draft.with_attributes((*draft.attributes, attribute)))

    def update_attribute(self, key: str, **changes: object) -> TemplateHistory:
        """Change the draft's attribute ``key`` (not its key or index)."""
        if "key" in changes or "index" in changes:
            raise InvalidTemplate("an attribute's key and index never change")
        draft = self._need_draft()
        attr = draft.attribute(key)
        if attr is None:
            raise InvalidTemplate(f"the draft has no attribute {key!r}")
        return self.revise(merge_attributes(draft, [attr.replace(**changes)]))

    def disable_attribute(self, key: str) -> TemplateHistory:
        return self.update_attribute(key, enabled=False)

    def enable_attribute(self, key: str) -> TemplateHistory:
        return self.update_attribute(key, enabled=True)

    def _need_draft(self) -> Template:
        draft = self.draft
        if draft is None:
            raise InvalidTemplate(
                f"version {self.latest.version} of {self.id!r} is {self.latest.status} and "
                "immutable; open a new version"
            )
        return draft

    def _replace_version(self, template: Template) -> TemplateHistory:
        versions = list(self.versions)
        versions[template.version - 1] = template
        return TemplateHistory(tuple(versions))


def _check_publishable(template: Template) -> None:
    if not template.enabled_attributes():
        raise InvalidTemplate("a template needs an enabled attribute to be published")
