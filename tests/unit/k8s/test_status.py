from __future__ import annotations

import pytest

from edgeworkers.k8s import status
from edgeworkers.k8s.status import FieldError

RFC1123_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            FieldError("FieldValueInvalid", "spec.containers[0].name", "Web_1", RFC1123_LABEL),
            f'spec.containers[0].name: Invalid value: "Web_1": {RFC1123_LABEL}',
        ),
        (status.required("spec.containers"), "spec.containers: Required value"),
        (
            status.not_supported("spec.restartPolicy", "Sometimes", ["Always", "Never", "OnFailure"]),
            'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "Never", "OnFailure"',
        ),
        (status.duplicate("spec.containers[1].name", "web"), 'spec.containers[1].name: Duplicate value: "web"'),
        (
            status.not_found_value("spec.containers[0].volumeMounts[0].name", "v"),
            'spec.containers[0].volumeMounts[0].name: Not found: "v"',
        ),
        (
            status.invalid_value("spec.terminationGracePeriodSeconds", -1, "must be greater than or equal to 0"),
            "spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0",
        ),
        (status.invalid_value("spec.hostNetwork", True, "x"), "spec.hostNetwork: Invalid value: true: x"),
        (status.invalid_value("spec.x", None, "x"), "spec.x: Invalid value: null: x"),
        (status.forbidden_field("spec", "nope"), "spec: Forbidden: nope"),
        (status.too_long("data", 1048576), "data: Too long: must have at most 1048576 bytes"),
    ],
)
def test_field_error_messages_match_kubernetes(error: FieldError, message: str) -> None:
    assert error.message() == message


def test_not_found_is_a_complete_status() -> None:
    err = status.not_found("pods", "nope")
    assert err.code == 404
    assert err.status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "kind": "pods"},
        "code": 404,
    }


def test_group_qualifies_the_resource() -> None:
    err = status.not_found("deployments", "web", group="apps")
    assert err.status["message"] == 'deployments.apps "web" not found'
    assert err.status["details"] == {"name": "web", "group": "apps", "kind": "deployments"}


@pytest.mark.parametrize(
    ("err", "code", "reason", "message"),
    [
        (status.already_exists("pods", "x"), 409, "AlreadyExists", 'pods "x" already exists'),
        (
            status.conflict("pods", "x"),
            409,
            "Conflict",
            (
                'Operation cannot be fulfilled on pods "x": the object has been modified; '
                "please apply your changes to the latest version and try again"
            ),
        ),
        (status.unauthorized(), 401, "Unauthorized", "Unauthorized"),
        (
            status.forbidden("pods", "", 'User "bob" cannot list resource "pods"'),
            403,
            "Forbidden",
            'pods is forbidden: User "bob" cannot list resource "pods"',
        ),
        (status.bad_request("bad"), 400, "BadRequest", "bad"),
        (
            status.unsupported_media_type("text/plain"),
            415,
            "UnsupportedMediaType",
            (
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json, application/yaml"
            ),
        ),
        (
            status.too_large("limit is 3145728"),
            413,
            "RequestEntityTooLarge",
            "Request entity too large: limit is 3145728",
        ),
        (status.gone("too old resource version: 1 (5)"), 410, "Expired", "too old resource version: 1 (5)"),
        (
            status.method_not_allowed("pods", "deletecollection"),
            405,
            "MethodNotAllowed",
            'deletecollection is not supported on resources of kind "pods"',
        ),
        (status.internal("boom"), 500, "InternalError", "Internal error occurred: boom"),
    ],
)
def test_builders_answer_with_kubernetes_codes_reasons_and_messages(
    err: status.APIError, code: int, reason: str, message: str
) -> None:
    assert (err.code, err.status["code"], err.reason, err.status["message"]) == (code, code, reason, message)
    assert err.status["status"] == "Failure" and err.status["kind"] == "Status"


def test_invalid_with_one_error_lists_it_and_its_cause() -> None:
    err = status.invalid("Pod", "x", [status.required("spec.containers")])
    assert err.code == 422 and err.reason == "Invalid"
    assert err.status["message"] == 'Pod "x" is invalid: spec.containers: Required value'
    assert err.status["details"] == {
        "name": "x",
        "kind": "Pod",
        "causes": [{"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers"}],
    }


def test_invalid_with_several_errors_brackets_them_and_drops_repeats() -> None:
    errors = [
        status.required("spec.containers[0].image"),
        status.not_supported("spec.restartPolicy", "Sometimes", ["Always", "Never", "OnFailure"]),
        status.required("spec.containers[0].image"),
    ]
    err = status.invalid("Pod", "x", errors)
    assert err.status["message"] == (
        'Pod "x" is invalid: [spec.containers[0].image: Required value, spec.restartPolicy: Unsupported value: '
        '"Sometimes": supported values: "Always", "Never", "OnFailure"]'
    )
    assert len(err.status["details"]["causes"]) == 3
    assert err.status["details"]["causes"][1]["message"] == (
        'Unsupported value: "Sometimes": supported values: "Always", "Never", "OnFailure"'
    )


def test_status_success() -> None:
    assert status.status_success({"name": "x", "kind": "pods"}) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": "x", "kind": "pods"},
        "code": 200,
    }


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("web", '"web"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("x\ny\t", '"x\\ny\\t"'),
        ("\x01", '"\\x01"'),
        ("é", '"é"'),
        ("\u200b", '"\\u200b"'),
    ],
)
def test_values_are_quoted_like_go(text: str, quoted: str) -> None:
    assert status.go_quote(text) == quoted
    assert status.invalid_value("f", text, "d").message() == f"f: Invalid value: {quoted}: d"
