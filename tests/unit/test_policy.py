"""The routing policy: the default encodes DOMAIN.md, and a broken policy is refused by rule and field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from bus389.agencies import Agency
from bus389.errors import PolicyError
from bus389.routing.policy import ORIGINAL_SENDER, Policy, load_policy, parse_policy
from bus389.settings import RouterSettings

POLICY_FILE = RouterSettings().policy_path


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(POLICY_FILE)


def _rule(policy: Policy, rule_id: str) -> Any:
    return next(r for r in policy.rules if r.id == rule_id)


# Every route of DOMAIN.md: (event type, recipient) → the plan section it must cite.
DOMAIN_ROUTES = [
    ("suspect_seller", Agency.POLICE, "II.1"),
    ("suspect_seller", Agency.MARKET_SURVEILLANCE, "II.9"),
    ("suspect_seller", Agency.TAX, "II.4"),
    ("suspect_seller", Agency.ICT, "II.6"),
    ("suspect_seller", Agency.CUSTOMS, "II.3"),
    ("suspect_seller", Agency.BORDER_GUARD, "II.2"),
    ("domain_block_request", Agency.ICT, "II.6"),
    ("domain_block_request", Agency.MARKET_SURVEILLANCE, "II.9"),
    ("tax_discrepancy", Agency.MARKET_SURVEILLANCE, "II.9"),
    ("tax_discrepancy", Agency.POLICE, "II.1"),
    ("domain_block_result", Agency.MARKET_SURVEILLANCE, "II.9"),
    ("complaint", Agency.MARKET_SURVEILLANCE, "II.9"),
    ("complaint", Agency.INDUSTRY_TRADE, "II.5"),
    ("complaint", Agency.POLICE, "II.1"),
    ("case_referral", Agency.POLICE, "II.1"),
    ("case_referral", Agency.MARKET_SURVEILLANCE, "II.9"),
    ("case_outcome", Agency.MARKET_SURVEILLANCE, "II.9"),
    ("case_outcome", Agency.TAX, "II.4"),
    ("case_outcome", Agency.INDUSTRY_TRADE, "II.5"),
    ("case_outcome", Agency.MEDIA, "II.7"),
    ("periodic_report", Agency.MARKET_SURVEILLANCE, "III.3"),
    ("periodic_report", Agency.COMMITTEE, "II.9"),
    ("law_gap_proposal", Agency.MARKET_SURVEILLANCE, "II.9"),
    ("law_gap_proposal", Agency.COMMITTEE, "II.9"),
]

# Who may publish each type (docs/duties.md): (event type, publishers, plan section).
DOMAIN_RIGHTS = [
    ("domain_block_result", {Agency.ICT}, "II.6"),
    ("tax_discrepancy", {Agency.TAX}, "II.4"),
    ("complaint", {Agency.INDUSTRY_TRADE, Agency.MARKET_SURVEILLANCE}, "II.5"),
    ("routing_notice", set(), "I.2"),
    ("directive", {Agency.COMMITTEE, Agency.MARKET_SURVEILLANCE}, "II.9"),
    ("compiled_report", {Agency.MARKET_SURVEILLANCE}, "II.9"),
    (
        "domain_block_request",
        {
            Agency.POLICE,
            Agency.BORDER_GUARD,
            Agency.CUSTOMS,
            Agency.TAX,
            Agency.INDUSTRY_TRADE,
            Agency.MARKET_SURVEILLANCE,
        },
        "II.6",
    ),
    ("suspect_seller", set(Agency) - {Agency.MEDIA, Agency.COMMITTEE}, "I.2"),
    ("case_referral", set(Agency) - {Agency.MEDIA, Agency.COMMITTEE}, "II.1"),
    ("case_outcome", set(Agency) - {Agency.MEDIA, Agency.COMMITTEE, Agency.OTHER_MEMBERS}, "III.3"),
    ("periodic_report", set(Agency) - {Agency.COMMITTEE}, "III.3"),
    ("law_gap_proposal", set(Agency) - {Agency.COMMITTEE}, "II.1"),
]


@pytest.mark.parametrize(("event_type", "publishers", "section"), DOMAIN_RIGHTS)
def test_every_right_is_the_domain_one(
    policy: Policy, event_type: str, publishers: set[Agency], section: str
) -> None:
    right = policy.right_for(event_type)
    assert right is not None
    assert (set(right.publishers), right.plan_section) == (publishers, section)
    assert all(policy.may_publish(a, event_type) == (a in publishers) for a in Agency)


def test_every_event_type_has_exactly_one_right(raw: dict[str, Any]) -> None:
    data = copy.deepcopy(raw)
    data["rights"] = [r for r in data["rights"] if r["event_type"] != "complaint"]
    data["rights"].append(dict(data["rights"][0]))
    with pytest.raises(PolicyError) as info:
        parse_policy(data)
    assert "rights: no entry for 'complaint'" in str(info.value)
    assert "rights: 'suspect_seller' is listed 2 times" in str(info.value)


@pytest.mark.parametrize(("event_type", "recipient", "section"), DOMAIN_ROUTES)
def test_every_domain_route_is_a_rule_citing_its_plan_section(
    policy: Policy, event_type: str, recipient: Agency, section: str
) -> None:
    rules = [r for r in policy.rules if r.event_type == event_type and recipient in r.recipients]
    assert [r.plan_section for r in rules] == [section]


def test_the_block_result_goes_back_to_the_requester(policy: Policy) -> None:
    rule = _rule(policy, "domain_block_result.requester")
    assert rule.recipients == [ORIGINAL_SENDER]
    assert "reply_fallback" not in type(rule).model_fields  # a typed field never addresses an answer


def test_the_standing_office_catch_all_cites_iii_3(policy: Policy) -> None:
    catch_all = [r for r in policy.rules if r.event_type == "*" and not r.when]
    assert len(catch_all) == 1
    assert catch_all[0].recipients == [Agency.MARKET_SURVEILLANCE]
    assert catch_all[0].plan_section == "III.3"
    assert catch_all[0].cc is True


def test_the_tax_evasion_threshold_is_the_penal_code_one(policy: Policy) -> None:
    (condition,) = _rule(policy, "tax_discrepancy.police").when
    assert condition.field == "estimated_tax_owed_vnd"
    assert condition.gte == 100_000_000


def test_media_clear_only_and_personal_fields(policy: Policy) -> None:
    assert policy.sensitivity.clear_only == [Agency.MEDIA]
    assert set(policy.personal_data.fields) == {
        "seller.national_id",
        "seller.phone",
        "seller.address",
        "complainant.national_id",
        "complainant.phone",
        "complainant.address",
    }
    assert policy.personal_data.granted(Agency.ICT) == frozenset()
    assert policy.personal_data.granted(Agency.MEDIA) == frozenset()
    assert policy.personal_data.granted(Agency.TAX) == {
        "seller.national_id",
        "seller.phone",
        "seller.address",
    }
    assert policy.personal_data.granted(Agency.POLICE) == set(policy.personal_data.fields)


def test_only_rules_for_the_acting_agency_allow_red(policy: Policy) -> None:
    red = {r.id for r in policy.rules if r.allow_red}
    assert red == {
        "suspect_seller.police",
        "tax_discrepancy.police",
        "complaint.police",
        "complaint.market_surveillance",
        "complaint.industry_trade",
        "case_referral.police",
        "domain_block_request.ict",
        "tax_discrepancy.market_surveillance",
        "periodic_report.market_surveillance",
        "periodic_report.committee",
        "law_gap_proposal.market_surveillance",
        "law_gap_proposal.committee",
        "domain_block_result.requester",
        "reply.original_sender",
        # the addressees of a directive and the standing office on a claim, an inspection, a compilation
        *(f"directive.{a.value}" for a in Agency if a is not Agency.COMMITTEE),
        "case_claim.market_surveillance",
        "inspection_result.market_surveillance",
        "inspection_result.police",
        "compiled_report.committee",
    }


def test_no_event_type_is_left_to_the_catch_all(policy: Policy) -> None:
    from bus389.schemas.catalog import load_catalog

    missing, only_catch_all = policy.unrouted(load_catalog().event_types())
    assert missing == []
    assert only_catch_all == []


def test_unrouted_lists_a_type_without_rules(raw: dict[str, Any]) -> None:
    data = copy.deepcopy(raw)
    data["rules"] = [r for r in data["rules"] if r["event_type"] not in ("law_gap_proposal", "*")]
    policy = parse_policy(data)
    assert policy.unrouted(["suspect_seller", "law_gap_proposal"]) == (["law_gap_proposal"], [])
    data["rules"].append({"id": "all", "event_type": "*", "plan_section": "III.3", "recipients": ["police"]})
    assert parse_policy(data).unrouted(["suspect_seller", "law_gap_proposal"]) == ([], ["law_gap_proposal"])


# -- validation errors name the rule and the field --------------------------------------------------


def _broken(raw: dict[str, Any], rule_id: str, **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(raw)
    for rule in data["rules"]:
        if rule["id"] == rule_id:
            for key, value in changes.items():
                if value is None:
                    rule.pop(key, None)
                else:
                    rule[key] = value
    return data


@pytest.mark.parametrize(
    ("rule_id", "changes", "expected"),
    [
        (
            "suspect_seller.customs",
            {"when": [{"field": "goods_imprted", "equals": True}]},
            ["rule 'suspect_seller.customs'", "when[0].field", "goods_imprted"],
        ),
        (
            "suspect_seller.customs",
            {"when": [{"field": "goods_imported", "equals": True, "gte": 1}]},
            ["rule 'suspect_seller.customs'", "when[0]", "exactly one of"],
        ),
        (
            "suspect_seller.customs",
            {"when": [{"field": "goods_imported", "equals": "yes"}]},
            ["rule 'suspect_seller.customs'", "goods_imported", "'yes' does not fit a boolean"],
        ),
        (
            "tax_discrepancy.police",
            {"when": [{"field": "period", "gte": 100}]},
            ["rule 'tax_discrepancy.police'", "when[0].field", "gte needs a number"],
        ),
        (
            "suspect_seller.ict",
            {"when": [{"any": [{"field": "accounts[].platform", "in": ["MYSPACE"]}]}]},
            ["rule 'suspect_seller.ict'", "when[0].any[0].field", "'MYSPACE' is not one of"],
        ),
        (
            "suspect_seller.police",
            {"recipients": ["polise"]},
            ["rule 'suspect_seller.police'", "recipients[0]"],
        ),
        (
            "suspect_seller.police",
            {"plan_section": "chapter 2"},
            ["rule 'suspect_seller.police'", "plan_section"],
        ),
        (
            "suspect_seller.police",
            {"event_type": "suspect_sellers"},
            ["rule 'suspect_seller.police'", "event_type", "unknown event type 'suspect_sellers'"],
        ),
        (
            "suspect_seller.police",
            {"allow_reds": True},
            ["rule 'suspect_seller.police'", "allow_reds", "Extra inputs"],
        ),
        (
            "suspect_seller.police",
            {"plan_section": None},
            ["rule 'suspect_seller.police'", "plan_section", "Field required"],
        ),
        (
            "domain_block_result.requester",
            {"reply_fallback": "requester"},
            ["rule 'domain_block_result.requester'", "reply_fallback", "Extra inputs"],
        ),
        (
            "case_outcome.media",
            {"id": "case_outcome.market_surveillance"},
            ["rule 'case_outcome.market_surveillance'", "id: used by more than one rule"],
        ),
    ],
)
def test_a_broken_rule_is_named_with_its_field(
    raw: dict[str, Any], rule_id: str, changes: dict[str, Any], expected: list[str]
) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(_broken(raw, rule_id, **changes), source="p.yaml")
    message = str(caught.value)
    assert message.startswith("p.yaml: invalid routing policy")
    for part in expected:
        assert part in message, message


def test_every_problem_is_listed_at_once(raw: dict[str, Any]) -> None:
    data = _broken(raw, "suspect_seller.customs", when=[{"field": "nope", "equals": True}])
    data = _broken(data, "suspect_seller.border_guard", when=[{"field": "nope_either", "equals": True}])
    with pytest.raises(PolicyError) as caught:
        parse_policy(data)
    assert "'suspect_seller.customs'" in str(caught.value)
    assert "'suspect_seller.border_guard'" in str(caught.value)


def test_grants_and_personal_fields_are_checked(raw: dict[str, Any]) -> None:
    data = copy.deepcopy(raw)
    data["personal_data"]["grants"]["ict"] = ["seller.bank_account"]
    data["personal_data"]["fields"].append("seller.shoe_size")
    with pytest.raises(PolicyError) as caught:
        parse_policy(data)
    assert "personal_data.grants.ict: 'seller.bank_account' matches no personal_data field" in str(
        caught.value
    )
    assert "personal_data.fields: no event type has the field 'seller.shoe_size'" in str(caught.value)


def test_an_unknown_agency_in_grants_is_named(raw: dict[str, Any]) -> None:
    data = copy.deepcopy(raw)
    data["personal_data"]["grants"]["army"] = ["seller.*"]
    with pytest.raises(PolicyError, match=r"personal_data\.grants\.army"):
        parse_policy(data)


def test_a_malformed_path_is_named(raw: dict[str, Any]) -> None:
    data = _broken(raw, "suspect_seller.customs", when=[{"field": "Goods Imported", "equals": True}])
    with pytest.raises(PolicyError, match=r"rule 'suspect_seller.customs': when\[0\]\.field"):
        parse_policy(data)


def test_a_rule_without_an_id_is_named_by_position(raw: dict[str, Any]) -> None:
    data = copy.deepcopy(raw)
    data["rules"].append({"event_type": "complaint", "plan_section": "II.9", "recipients": ["tax"]})
    with pytest.raises(PolicyError, match=rf"rule #{len(data['rules'])}: id: Field required"):
        parse_policy(data)


def test_yaml_and_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("rules: [unclosed", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(bad)
    with pytest.raises(PolicyError, match="cannot read the routing policy"):
        load_policy(tmp_path / "missing.yaml")
    bad.write_text("- just a list\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="must be a mapping"):
        load_policy(bad)


# -- the CLI: `bus389 routes check` and `bus389 routes explain` -------------------------------------------


def _cli(*args: str) -> Any:
    from click.testing import CliRunner

    from bus389.cli.main import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_routes_check_passes_on_the_default_policy() -> None:
    result = _cli("routes", "check")
    assert result.exit_code == 0, result.output
    assert "suspect_seller: suspect_seller.police (II.1)" in result.output
    assert "every event type: standing_office.all (III.3)" in result.output


def test_routes_check_fails_on_an_unrouted_type(raw: dict[str, Any], tmp_path: Path) -> None:
    data = copy.deepcopy(raw)
    data["rules"] = [r for r in data["rules"] if r["event_type"] not in ("law_gap_proposal", "*")]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = _cli("routes", "check", "--policy", str(path))
    assert result.exit_code == 1
    assert "no rule routes: law_gap_proposal" in result.output


def test_routes_check_names_the_broken_rule(raw: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    data = _broken(raw, "case_outcome.media", when=[{"field": "publc", "equals": True}])
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = _cli("routes", "check", "--policy", str(path))
    assert result.exit_code == 2
    assert "rule 'case_outcome.media': when[0].field: unknown field path 'publc'" in result.output


def test_routes_explain_shows_recipients_rules_and_redactions(tmp_path: Path) -> None:
    events = tmp_path / "suspect_seller.jsonl"
    events.write_text(
        '{"meta": {"sensitivity": "AMBER"}, "seller": {"name": "Shop Hoa", "national_id": "051190004321",'
        ' "phone": "0905123456"}, "accounts": [{"platform": "FACEBOOK", "account": "shophoa"}],'
        ' "goods": "mỹ phẩm", "violation_kinds": ["COUNTERFEIT"], "summary": "hàng giả",'
        ' "goods_imported": true}\n'
        '{"meta": {"sensitivity": "RED"}, "seller": {"name": "Shop Lan"}, "goods": "giày",'
        ' "violation_kinds": [], "summary": "x"}\n'
        '{"seller": {"name": "Shop Mai"}, "goods": "giày", "violation_kinds": ["NOT_A_KIND"],'
        ' "summary": "x"}\n',
        encoding="utf-8",
    )
    result = _cli("routes", "explain", str(events), "--as", "police")
    assert result.exit_code == 1  # line 3 is invalid
    out = result.output
    assert "line 1: suspect_seller" in out and "from police, sensitivity AMBER" in out
    assert (
        "-> ict" in out
        and "rule suspect_seller.ict (plan II.6); redacted: seller.national_id, seller.phone" in out
    )
    assert "rule suspect_seller.customs (plan II.3)" in out
    assert "withheld from police: sender" in out
    assert "line 2" in out and "DLQ no_route" in out
    assert ":3: violation_kinds" in out

    result = _cli("routes", "explain", str(events), "--as", "customs", "--json")
    first = json.loads(result.output.splitlines()[0])
    assert {d["recipient"] for d in first["deliveries"]} == {"police", "market_surveillance", "tax", "ict"}


def test_routes_explain_needs_a_type_it_can_tell(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("{}\n", encoding="utf-8")
    result = _cli("routes", "explain", str(events), "--as", "police")
    assert result.exit_code == 1
    assert "give --type" in result.output
