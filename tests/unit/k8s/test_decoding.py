"""Values of the wrong JSON type are named as the API server's Go JSON decoder names them."""
import pytest

from edgeworkers.k8s.decoding import canonical_bytes, go_base64, type_error
from edgeworkers.k8s.pod import Pod


def container(**fields):
    return {"spec": {"containers": [{"name": "c", "image": "busybox", **fields}]}}


@pytest.mark.parametrize(("kind", "obj", "message"), [
    ("Pod", {"metadata": {"name": "a", "labels": {"v": 1}}},
     "number into Go struct field ObjectMeta.metadata.labels of type string"),
    ("Pod", container(env=[{"name": "A", "value": 1}]),
     "number into Go struct field EnvVar.spec.containers.env.value of type string"),
    ("Pod", container(ports=[{"containerPort": "80"}]),
     "string into Go struct field ContainerPort.spec.containers.ports.containerPort of type int"),
    ("Pod", container(command=["sleep", 10]),
     "number into Go struct field Container.spec.containers.command of type string"),
    ("Pod", container(securityContext={"privileged": "true"}),
     "string into Go struct field SecurityContext.spec.containers.securityContext.privileged of type bool"),
    ("Pod", container(livenessProbe={"httpGet": {"port": [80]}}),
     "array into Go struct field HTTPGetAction.spec.containers.livenessProbe.httpGet.port of type intstr.IntOrString"),
    ("Pod", {"spec": {"volumes": "data"}},
     "string into Go struct field PodSpec.spec.volumes of type []v1.Volume"),
    ("Pod", {"spec": "x"}, "string into Go struct field Pod.spec of type v1.PodSpec"),
    ("Pod", {"spec": {"tolerations": [{"key": ["k"]}]}},
     "array into Go struct field Toleration.spec.tolerations.key of type string"),
    ("ConfigMap", {"data": {"a": 1}}, "number into Go struct field ConfigMap.data of type string"),
    ("Secret", {"data": "x"}, "string into Go struct field Secret.data of type map[string]string"),
])
def test_a_value_of_the_wrong_type_is_named_like_go_does(kind, obj, message):
    assert type_error(kind, obj) == f"json: cannot unmarshal {message}"


@pytest.mark.parametrize("obj", [
    container(ports=[{"containerPort": 80}], resources={"limits": {"cpu": 1, "memory": "64Mi"}},
              livenessProbe={"httpGet": {"port": "http"}}),
    {"spec": {"containers": [{}]}},  # a missing field is validation's business (422), not the decoder's
    {"metadata": {"name": "a"}, "spec": {"containers": [{"name": "c", "image": "b", "extra": {"any": 1}}]}},
])
def test_well_typed_objects_pass(obj):
    assert type_error("Pod", obj) is None


def test_an_object_that_passes_parses_with_the_nodes_model():
    obj = {"metadata": {"name": "a"}, **container(env=[{"name": "A", "value": "1"}], ports=[{"containerPort": 80}])}
    assert type_error("Pod", obj) is None
    assert Pod.from_dict(obj).spec.containers[0].env[0].value == "1"


def test_a_leases_duration_is_a_number():
    assert type_error("Lease", {"spec": {"holderIdentity": "edge-1", "leaseDurationSeconds": "40"}}) == (
        "json: cannot unmarshal string into Go struct field LeaseSpec.spec.leaseDurationSeconds of type int")


def test_kinds_without_a_model_are_not_checked():
    assert type_error("Binding", {"target": "anything"}) is None


def test_a_null_where_a_value_is_wanted_is_dropped_as_go_decodes_it():
    obj = {"metadata": {"name": "a", "labels": None},
           "spec": {"restartPolicy": None, **container(ports=[{"containerPort": 80, "protocol": None}])["spec"]}}
    assert type_error("Pod", obj) is None
    assert obj["spec"] == {"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}]}
    assert obj["metadata"] == {"name": "a", "labels": None}  # optional: kept, as the node reads it fine
    Pod.from_dict(obj)


# Go's base64.StdEncoding.Decode, as encoding/json decodes a []byte field: line breaks skipped, padding required.
@pytest.mark.parametrize(("text", "decoded"), [
    ("aGVsbG8=", b"hello"),
    ("aGVs\nbG8=", b"hello"),
    ("aG\r\nVs\nbA\n=\n=\n", b"hell"),  # newlines even between the two padding characters
    ("", b""),
    ("\n", b""),
])
def test_go_base64_skips_line_breaks(text, decoded):
    assert go_base64(text) == decoded


@pytest.mark.parametrize(("text", "offset"), [
    ("!!notbase64", 0),  # a character outside the alphabet
    ("aGVsbG8", 4),  # the last quantum lacks its padding: Go names where it starts
    ("a===", 1),  # padding after one character
    ("aGVsbA=", 7),  # "==" needed, the input ends
    ("aGVsbA=x", 6),  # "==" needed, something else follows
    ("aGVsbA==x", 8),  # data after the padding
    ("aGVs bG8=", 4),  # a space is no line break
])
def test_go_base64_refuses_as_go_does_with_its_offset(text, offset):
    with pytest.raises(ValueError, match=f"^illegal base64 data at input byte {offset}$"):
        go_base64(text)


def test_canonical_bytes_stores_secret_data_and_binary_data_without_line_breaks():
    secret = {"data": {"tls.crt": "aGVs\nbG8=", "empty": ""}, "stringData": {"x": "a\nb"}}
    assert canonical_bytes("Secret", secret) is None
    assert secret == {"data": {"tls.crt": "aGVsbG8=", "empty": ""}, "stringData": {"x": "a\nb"}}
    configmap = {"data": {"plain": "aGVs\nbG8="}, "binaryData": {"b": "aGVs\r\nbG8="}}
    assert canonical_bytes("ConfigMap", configmap) is None
    assert configmap == {"data": {"plain": "aGVs\nbG8="}, "binaryData": {"b": "aGVsbG8="}}


def test_canonical_bytes_reports_the_first_bad_value_and_changes_nothing():
    configmap = {"binaryData": {"good": "aGVs\nbG8=", "bad": "!!notbase64"}}
    assert canonical_bytes("ConfigMap", configmap) == "illegal base64 data at input byte 0"
    assert configmap == {"binaryData": {"good": "aGVs\nbG8=", "bad": "!!notbase64"}}
    assert canonical_bytes("Pod", {"data": {"a": "!"}}) is None  # no []byte field
