"""Versioning rules: published versions are immutable, attributes are disabled but never
deleted, withdrawal keeps data valid but refuses registrations."""

from __future__ import annotations

import pytest

from idnode.industry.history import TemplateHistory, check_transition, merge_attributes
from idnode.industry.layout import MAX_VERSION
from idnode.industry.model import Attribute, AttributeType, InvalidTemplate, Template
from idnode.industry.model import TemplateStatus as S

SERIAL = Attribute("serial", 2000, "序列号", required=True)
POWER = Attribute("power", 2001, "功率", AttributeType.NUMBER, precision=1)
DRAFT = Template("88.118.8/META_T", 1, "模板", (SERIAL, POWER))


def published() -> TemplateHistory:
    return TemplateHistory.start(DRAFT).publish()


def test_start_and_publish() -> None:
    history = TemplateHistory.start(DRAFT)
    assert history.draft == DRAFT
    assert history.current is None
    assert history.for_write() == DRAFT  # the validator then refuses: a draft takes nothing
    history = history.publish()
    assert history.draft is None
    assert history.current == DRAFT.replace(status=S.PUBLISHED)
    assert history.for_write() is history.current
    assert history.id == "88.118.8/META_T"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (DRAFT.replace(version=2), "starts at version 1"),
        (DRAFT.replace(status=S.WITHDRAWN), "cannot start withdrawn"),
        (DRAFT.replace(status=S.PUBLISHED, attributes=()), "enabled attribute"),
    ],
)
def test_bad_start(template: Template, message: str) -> None:
    with pytest.raises(InvalidTemplate, match=message):
        TemplateHistory.start(template)


def test_draft_is_edited_in_place() -> None:
    history = TemplateHistory.start(DRAFT).add_attribute(Attribute("color", 2002, "颜色"))
    history = history.update_attribute("serial", name_en="Serial number", max_length=20)
    assert len(history.versions) == 1
    (draft,) = history.versions
    assert draft.attribute("serial") == SERIAL.replace(name_en="Serial number", max_length=20)
    # a never-published draft may drop attributes again
    assert history.revise(DRAFT).latest == DRAFT


def test_published_version_is_immutable() -> None:
    history = published()
    with pytest.raises(InvalidTemplate, match="immutable; open a new version"):
        history.revise(DRAFT)
    with pytest.raises(InvalidTemplate, match="immutable"):
        history.disable_attribute("power")
    with pytest.raises(InvalidTemplate, match="immutable"):
        history.add_attribute(Attribute("color", 2002, "颜色"))


def test_new_version_disables_but_never_deletes() -> None:
    history = published().new_version()
    v1, v2 = history.versions
    assert (v2.version, v2.status, v2.attributes) == (2, S.DRAFT, v1.attributes)
    history = history.disable_attribute("power").add_attribute(Attribute("color", 2002, "颜色"))
    assert history.latest.attribute("power") == POWER.replace(enabled=False)
    with pytest.raises(InvalidTemplate, match="'power' of version 1 cannot be removed"):
        history.revise(history.latest.with_attributes((SERIAL,)))
    with pytest.raises(InvalidTemplate, match="keeps index"):
        retyped = POWER.replace(type=AttributeType.STRING, precision=None)
        history.revise(merge_attributes(history.latest, [retyped]))
    with pytest.raises(InvalidTemplate, match="key and index never change"):
        history.update_attribute("power", index=2010)
    # attributes added by this draft may still go
    history = history.revise(history.latest.with_attributes((SERIAL, POWER.replace(enabled=False))))
    history = history.publish().new_version().enable_attribute("power").publish()
    assert [t.status for t in history.versions] == [S.PUBLISHED] * 3
    assert history.version(2).attribute("power") == POWER.replace(enabled=False)
    assert history.current == history.version(3)


def test_withdraw_and_publish_again() -> None:
    history = published().withdraw()
    assert history.current is not None and history.current.status is S.WITHDRAWN
    with pytest.raises(InvalidTemplate, match="no published version to withdraw"):
        history.withdraw()
    history = history.publish()
    assert history.current is not None and history.current.status is S.PUBLISHED
    with pytest.raises(InvalidTemplate, match="nothing to publish"):
        history.publish()


def test_withdrawn_with_newer_draft() -> None:
    history = published().withdraw().new_version()
    assert history.current == history.version(1)
    history = history.publish()
    assert [t.status for t in history.versions] == [S.WITHDRAWN, S.PUBLISHED]


def test_rules_on_construction() -> None:
    v1 = DRAFT.replace(status=S.PUBLISHED)
    with pytest.raises(InvalidTemplate, match="at least one version"):
        TemplateHistory(())
    with pytest.raises(InvalidTemplate, match="version 2 found where 1 belongs"):
        TemplateHistory((v1.replace(version=2),))
    with pytest.raises(InvalidTemplate, match="draft but not the newest"):
        TemplateHistory((DRAFT, v1.replace(version=2)))
    with pytest.raises(InvalidTemplate, match="cannot follow"):
        TemplateHistory((v1, v1.replace(id="88.118.8/OTHER", version=2)))
    with pytest.raises(InvalidTemplate, match="has no version 3"):
        TemplateHistory((v1,)).version(3)
    with pytest.raises(InvalidTemplate, match="only draft version 2 can be revised"):
        published().new_version().revise(DRAFT)
    with pytest.raises(InvalidTemplate, match="keeps the draft a draft"):
        published().new_version().revise(v1.replace(version=2))
    with pytest.raises(InvalidTemplate, match="still a draft"):
        TemplateHistory.start(DRAFT).new_version()
    with pytest.raises(InvalidTemplate, match="no attribute 'nope'"):
        TemplateHistory.start(DRAFT).disable_attribute("nope")


def test_version_limit() -> None:
    last = DRAFT.replace(status=S.PUBLISHED)
    versions = tuple(last.replace(version=n) for n in range(1, MAX_VERSION + 1))
    with pytest.raises(InvalidTemplate, match=f"at most {MAX_VERSION} versions"):
        TemplateHistory(versions).new_version()


def test_merge_attributes_is_the_snms_incremental_edit() -> None:
    renamed = SERIAL.replace(name_zh="组件序列号")
    added = Attribute("color", 2002, "颜色")
    merged = merge_attributes(DRAFT, [renamed, added])
    assert merged.attributes == (renamed, POWER, added)
    with pytest.raises(InvalidTemplate, match="is at index 2000, not 2009"):
        merge_attributes(DRAFT, [SERIAL.replace(index=2009)])
    with pytest.raises(InvalidTemplate, match="two attributes use index 2001"):
        merge_attributes(DRAFT, [Attribute("x", 2001, "新")])


def test_transitions_of_a_whole_record() -> None:
    """What a native-protocol write of a template record may change."""
    draft = TemplateHistory.start(DRAFT)
    v1 = draft.publish()
    allowed = [
        (draft, draft.revise(DRAFT.with_attributes((SERIAL,)))),
        (draft, v1),
        (v1, v1.withdraw()),
        (v1.withdraw(), v1),
        (v1, v1.new_version().disable_attribute("power")),
        (v1, v1.new_version().publish()),
    ]
    for old, new in allowed:
        check_transition(old, new)
    changed = TemplateHistory((DRAFT.replace(status=S.PUBLISHED, name_zh="改名"),))
    refused = [
        (v1.new_version(), v1, "never removed"),
        (v1, changed, "published and immutable"),
        (v1, TemplateHistory((DRAFT.replace(id="88.118.8/META_X"),)), "cannot replace"),
        (v1, TemplateHistory.start(DRAFT), "cannot become a draft"),
    ]
    for old, new, message in refused:
        with pytest.raises(InvalidTemplate, match=message):
            check_transition(old, new)
