"""ops/gen_protobuf.py's readers of generated.proto and of the Go structs' tags, on small sources."""
from __future__ import annotations

import runpy
from pathlib import Path

GEN = runpy.run_path(str(Path(__file__).parents[2] / "ops" / "gen_protobuf.py"))

PROTO = """
syntax = "proto2";
package k8s.io.api.demo.v1;
import "k8s.io/apimachinery/pkg/api/resource/generated.proto";
option go_package = "k8s.io/api/demo/v1";
// a comment { with braces }
message Outer {
  /* block */ optional Inner inner = 1;
  repeated string group = 2;
  map<string, .k8s.io.apimachinery.pkg.api.resource.Quantity> limits = 3;
  message Inner {
    optional int32 replicas = 1 [default = 0];
  }
}
"""
RESOURCE = "package k8s.io.apimachinery.pkg.api.resource; message Quantity { optional string string = 1; }"

GO = """
type Outer struct {
	// Inner is inlined.
	Inner `json:",inline" protobuf:"bytes,1,opt,name=inner"`
	Group []string `json:"group,omitempty" protobuf:"bytes,2,rep,name=group"`
	metav1.TypeMeta `json:",inline"`
	Limits ResourceList `json:"limits" protobuf:"bytes,3,rep,name=limits,casttype=ResourceList"`
}

type Inner struct {
	Replicas *int32 `json:"replicas,omitempty" protobuf:"varint,1,opt,name=replicas"`
}
"""


def test_proto_messages_nested_maps_and_resolved_types():
    messages = {**GEN["parse_proto"](PROTO), **GEN["parse_proto"](RESOURCE)}
    GEN["resolve"](messages)
    outer = {f.name: f for f in messages["k8s.io.api.demo.v1.Outer"].fields}
    assert outer["inner"].type == "k8s.io.api.demo.v1.Outer.Inner" and outer["inner"].number == 1
    assert outer["group"].repeated and outer["group"].type == "string"
    assert (outer["limits"].type, outer["limits"].value_type) == ("map", "k8s.io.apimachinery.pkg.api.resource.Quantity")
    assert [f.type for f in messages["k8s.io.api.demo.v1.Outer.Inner"].fields] == ["int32"]


def test_go_tags_by_field_number():
    structs = GEN["parse_go"](GO)
    field = GEN["GoField"]
    assert structs["Outer"] == {1: field("", False, False, True), 2: field("group", False, True, False),
                                3: field("limits", False, False, False)}
    assert structs["Inner"] == {1: field("replicas", True, True, False)}
