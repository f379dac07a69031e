"""Seeds for the rest_json and rest_binary fuzz targets: REST inference bodies as
tritonclient.http and KServe's client write them (every datatype, nested and flat data,
parameters, requested outputs, Triton's binary data extension), and a few the server
must refuse (shapes claiming 2^40 rows, data of the wrong type, parameters that are not
scalars). rest_binary's inputs start with the JSON header's length as two little-endian
bytes (see fuzz/src/lib.rs). Run from the repository root with any Python 3:

    python3 fuzz/make_rest_seeds.py    # writes fuzz/corpus/rest_{json,binary}/seed-*
"""
import hashlib
import json
import pathlib
import struct


def write(target, data):
    out = pathlib.Path("fuzz/corpus") / target
    out.mkdir(parents=True, exist_ok=True)
    (out / ("seed-" + hashlib.sha1(data).hexdigest()[:16])).write_bytes(data)


def body(inputs, outputs=None, parameters=None):
    doc = {"id": "1", "inputs": inputs}
    if outputs is not None:
        doc["outputs"] = outputs
    if parameters is not None:
        doc["parameters"] = parameters
    return json.dumps(doc).encode()


def tensor(name, datatype, shape, data=None, parameters=None):
    t = {"name": name, "datatype": datatype, "shape": shape}
    if data is not None:
        t["data"] = data
    if parameters is not None:
        t["parameters"] = parameters
    return t


JSON = [
    body([tensor("features", "FP32", [1, 12], [0.5] * 12)]),
    body([tensor("features", "FP32", [2, 3], [[1, 2, 3], [4.5, -6, 1e-3]])],
         outputs=[{"name": "churn_probability", "parameters": {"binary_data": True}}]),
    body([tensor("customer_id", "BYTES", [2], ["C100042", "C109604"])],
         parameters={"entity_key": "C100042", "binary_data_output": False}),
    body([tensor("text", "BYTES", [1, 1], [["my coupon code is not working \u00e9\U0001f600"]])]),
    body([tensor("b", "BOOL", [3], [True, False, True])]),
    body([tensor("i8", "INT8", [2], [-128, 127]), tensor("u8", "UINT8", [2], [0, 255])]),
    body([tensor("i16", "INT16", [2], [-32768, 7]), tensor("u16", "UINT16", [1], [65535])]),
    body([tensor("i32", "INT32", [2], [-2147483648, 9]), tensor("u32", "UINT32", [1], [4294967295])]),
    body([tensor("i64", "INT64", [2], [-9223372036854775808, 1]),
          tensor("u64", "UINT64", [1], [18446744073709551615])]),
    body([tensor("h", "FP16", [2], [1.0, -2.0]), tensor("bf", "BF16", [1], [0.5])]),
    body([tensor("d", "FP64", [2], [1e300, -2.5])]),
    body([tensor("empty", "FP32", [0, 12], [])]),
    # Refused: claims, types, shapes and parameters the server must name.
    body([tensor("features", "FP32", [1099511627776, 12], [0] * 12)]),
    body([tensor("features", "FP32", [9223372036854775807, 2], [0, 0])]),
    body([tensor("features", "FP32", [-1, 12], [0] * 12)]),
    body([tensor("features", "FP32", [1, 2], ["x", None])]),
    body([tensor("features", "FP32", [1, 1], [[[[[[1]]]]]])]),
    body([tensor("features", "XYZ", [1], [1])]),
    body([tensor("features", "FP32", [1], [1], parameters={"p": [1, 2, 3]})]),
    body([tensor("features", "FP32", [1], [1], parameters={"binary_data_size": 4})]),
    body([tensor("features", "FP32", [1], {"a": 1})]),
]

for data in JSON:
    write("rest_json", data)


def binary(inputs, blobs, outputs=None):
    header = body(inputs, outputs)
    return struct.pack("<H", len(header)) + header + b"".join(blobs)


f32 = struct.pack("<12f", *[0.25] * 12)
write("rest_binary", binary(
    [tensor("features", "FP32", [1, 12], parameters={"binary_data_size": len(f32)})], [f32]))
strings = [b"C100042", b"C109604"]
raw = b"".join(struct.pack("<I", len(s)) + s for s in strings)
write("rest_binary", binary(
    [tensor("customer_id", "BYTES", [2], parameters={"binary_data_size": len(raw)})], [raw],
    outputs=[{"name": "churn_probability", "parameters": {"binary_data": True}}]))
write("rest_binary", binary(
    [tensor("features", "FP32", [1, 12], parameters={"binary_data_size": len(f32)}),
     tensor("text", "BYTES", [1], ["hello"])], [f32]))
# Refused: a size past the body, a header length past the body, bytes left over.
write("rest_binary", binary(
    [tensor("features", "FP32", [1, 12], parameters={"binary_data_size": 1 << 40})], [f32]))
write("rest_binary", struct.pack("<H", 65535) + body([tensor("x", "FP32", [1], [1])]))
write("rest_binary", binary(
    [tensor("features", "FP32", [1, 12], parameters={"binary_data_size": 8})], [f32]))
