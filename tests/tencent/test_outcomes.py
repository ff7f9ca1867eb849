"""The one table of Tencent codes: its shape and the rules written in its docstring."""

from __future__ import annotations

from flask_smscode.tencent.outcomes import (
    CODES,
    UNKNOWN,
    Failover,
    Meaning,
    codes_meaning,
    fails_over,
    meaning_of,
    row_of,
)


def test_the_codes_the_issue_names_are_classified():
    assert meaning_of("InvalidParameterValue.IncorrectPhoneNumber") is Meaning.INVALID_PHONE
    assert meaning_of("FailedOperation.PhoneNumberInBlacklist") is Meaning.INVALID_PHONE
    for window, seconds in (("ThirtySecond", 30), ("OneHour", 3600), ("Daily", 86400)):
        row = row_of(f"LimitExceeded.PhoneNumber{window}Limit")
        assert row.meaning is Meaning.FLOW_CONTROL and row.retry_after == seconds
    assert meaning_of("LimitExceeded.PhoneNumberSameContentDailyLimit") is Meaning.FLOW_CONTROL
    assert meaning_of("LimitExceeded.DeliveryFrequencyLimit") is Meaning.FLOW_CONTROL
    assert meaning_of("RequestLimitExceeded") is Meaning.FLOW_CONTROL
    for code in (
        "FailedOperation.SignatureIncorrectOrUnapproved",
        "FailedOperation.TemplateIncorrectOrUnapproved",
        "FailedOperation.InsufficientBalanceInSmsPackage",
        "InvalidParameterValue.TemplateParameterFormatError",
        "AuthFailure.SignatureFailure",
        "UnauthorizedOperation.RequestPermissionDeny",
    ):
        assert fails_over(code), code


def test_only_definite_failures_of_the_provider_or_account_fail_over():
    never = {Meaning.INVALID_PHONE, Meaning.FLOW_CONTROL, Meaning.UNCONFIRMED, Meaning.REQUEST}
    for code, row in CODES.items():
        assert (row.failover is Failover.ALWAYS) == (row.meaning not in never), code
        assert (row.retry_after is not None) == (row.meaning is Meaning.FLOW_CONTROL), code


def test_unknown_codes_are_ambiguous_unless_their_family_is_known():
    assert row_of("Something.New") is UNKNOWN and UNKNOWN.meaning is Meaning.UNCONFIRMED
    assert row_of(None) is UNKNOWN and not fails_over("Something.New")
    assert meaning_of("AuthFailure.New") is Meaning.SECRET_ID and fails_over("AuthFailure.New")
    assert meaning_of("UnauthorizedOperation.New") is Meaning.PERMISSION
    assert meaning_of("RequestLimitExceeded.New") is Meaning.FLOW_CONTROL


def test_internal_errors_are_decided_per_code():
    assert meaning_of("InternalError.Timeout") is Meaning.UNCONFIRMED
    assert meaning_of("InternalError.SendAndRecvFail") is Meaning.UNCONFIRMED
    assert meaning_of("InternalError.SigVerificationFail") is Meaning.PROVIDER_DOWN
    assert "AuthFailure.SecretIdNotFound" in codes_meaning(Meaning.SECRET_ID)
