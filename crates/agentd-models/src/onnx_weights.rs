//! The int8 MiniLM's ONNX graph with the F32 weights put back.
//!
//! The only ONNX MiniLM agentd can fetch (`all-minilm-l6-v2-int8`) stores its
//! weight matrices as int8 with a scale, and dequantizes them in the graph:
//! `Cast(W_q) * W_scale`, then ordinary F32 `MatMul`s. ONNX Runtime folds
//! those constants when it loads the session, so the model runs in F32 and
//! the int8 storage saves nothing at run time; it only costs accuracy (a
//! cosine of 0.996 with the reference on very short texts, below the 0.999
//! agentd requires). The F32 weights are at hand in `all-minilm-l6-v2`'s
//! safetensors, so before the session is created each quantized weight is
//! replaced in the model bytes: `W_q` becomes the F32 matrix (a cast from
//! float to float is a no-op) and `W_scale` ones. Same graph, same speed,
//! and the vectors of the F32 model.
//!
//! ONNX Runtime's own way of replacing initializers (`AddInitializer`) is
//! ignored once graph optimisations fold constants, hence the rewrite. It
//! needs only a little of the protobuf wire format: the model's graph
//! (field 7), the graph's initializers (field 5), and in each initializer
//! its dims (1), type (2), name (8) and raw data (9); every other byte is
//! copied as it is.

use std::collections::BTreeMap;

use safetensors::{Dtype, SafeTensors};

/// Which safetensors tensor each quantized initializer of the int8 model
/// holds, and whether the graph stores it transposed (the linear layers:
/// `x · Wᵀ` as `MatMul(x, W')` with `W' = Wᵀ`). Tied to the model.onnx whose
/// sha256 `models.toml` pins; [`f32_model`] fails if any name is not found.
fn quantized_weights() -> Vec<(String, String, bool)> {
    let mut table = vec![
        ("inner.embeddings.word_embeddings.weight".to_owned(), "embeddings.word_embeddings.weight".to_owned(), false),
        (
            "inner.embeddings.position_embeddings.weight".to_owned(),
            "embeddings.position_embeddings.weight".to_owned(),
            false,
        ),
    ];
    // The exporter named the linear weights by node number, layer after layer.
    const LINEAR: [[u32; 6]; 6] = [
        [49, 57, 65, 105, 109, 118],
        [122, 130, 138, 176, 180, 189],
        [193, 201, 209, 247, 251, 260],
        [264, 272, 280, 318, 322, 331],
        [335, 343, 351, 389, 393, 402],
        [406, 414, 422, 460, 464, 473],
    ];
    const SUBLAYERS: [&str; 6] = [
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.output.dense",
        "intermediate.dense",
        "output.dense",
    ];
    for (layer, numbers) in LINEAR.iter().enumerate() {
        for (number, sublayer) in numbers.iter().zip(SUBLAYERS) {
            table.push((format!("val_{number}"), format!("encoder.layer.{layer}.{sublayer}.weight"), true));
        }
    }
    table
}

/// The int8 model's bytes with every quantized weight replaced by its F32
/// value from `safetensors` (the bytes of `all-minilm-l6-v2`'s
/// model.safetensors). An error says what did not fit.
pub(crate) fn f32_model(onnx: &[u8], safetensors: &[u8]) -> Result<Vec<u8>, String> {
    let weights = SafeTensors::deserialize(safetensors).map_err(|e| format!("model.safetensors: {e}"))?;
    let mut replacements: BTreeMap<String, Replacement> = BTreeMap::new();
    for (base, name, transposed) in quantized_weights() {
        let tensor = weights.tensor(&name).map_err(|e| format!("model.safetensors: {name}: {e}"))?;
        if tensor.dtype() != Dtype::F32 || tensor.shape().len() != 2 {
            return Err(format!(
                "model.safetensors: {name} is {:?} {:?}, expected a F32 matrix",
                tensor.dtype(),
                tensor.shape()
            ));
        }
        let (rows, cols) = (tensor.shape()[0], tensor.shape()[1]);
        let values: Vec<f32> =
            tensor.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let (values, dims) = if transposed {
            let mut t = vec![0f32; values.len()];
            for r in 0..rows {
                for c in 0..cols {
                    t[c * rows + r] = values[r * cols + c];
                }
            }
            (t, [cols, rows])
        } else {
            (values, [rows, cols])
        };
        let dims = dims.map(|d| d as i64).to_vec();
        replacements.insert(format!("{base}_q"), Replacement::Weight { values, dims });
        replacements.insert(format!("{base}_scale"), Replacement::Ones);
    }

    let mut replaced = 0;
    let model = rewrite_fields(onnx, MODEL_GRAPH, |graph| {
        rewrite_fields(graph, GRAPH_INITIALIZER, |tensor| {
            let (name, dims) = tensor_name_and_dims(tensor)?;
            let Some(replacement) = replacements.get(&name) else {
                if name.ends_with("_q") {
                    return Err(format!("model.onnx: quantized weight {name} has no F32 counterpart"));
                }
                return Ok(None);
            };
            replaced += 1;
            let values = match replacement {
                Replacement::Weight { values, dims: want } => {
                    if *want != dims {
                        return Err(format!("model.onnx: {name} has dims {dims:?}, the F32 weight {want:?}"));
                    }
                    values.clone()
                }
                Replacement::Ones => vec![1.0; dims.iter().product::<i64>() as usize],
            };
            Ok(Some(f32_tensor(&name, &dims, &values)))
        })
        .map(Some)
    })?;
    if replaced != replacements.len() {
        return Err(format!("model.onnx: {replaced} of the {} expected quantized tensors found", replacements.len()));
    }
    Ok(model)
}

enum Replacement {
    Weight { values: Vec<f32>, dims: Vec<i64> },
    Ones,
}

/// `ModelProto.graph`.
const MODEL_GRAPH: u32 = 7;
/// `GraphProto.initializer`.
const GRAPH_INITIALIZER: u32 = 5;
/// `TensorProto` fields.
const TENSOR_DIMS: u32 = 1;
const TENSOR_DATA_TYPE: u32 = 2;
const TENSOR_NAME: u32 = 8;
const TENSOR_RAW_DATA: u32 = 9;
/// `TensorProto.DataType.FLOAT`.
const FLOAT: u64 = 1;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// Copies a protobuf message, passing each length-delimited field numbered
/// `field` through `rewrite`: `Some(bytes)` replaces its payload, `None`
/// keeps it.
fn rewrite_fields(
    message: &[u8],
    field: u32,
    mut rewrite: impl FnMut(&[u8]) -> Result<Option<Vec<u8>>, String>,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(message.len());
    let mut reader = Reader { buf: message, pos: 0 };
    while let Some(item) = reader.field()? {
        match item.payload {
            Some(payload) if item.number == field => match rewrite(payload)? {
                Some(new) => write_len(&mut out, field, &new),
                None => out.extend_from_slice(item.raw),
            },
            _ => out.extend_from_slice(item.raw),
        }
    }
    Ok(out)
}

/// A tensor's name and dims.
fn tensor_name_and_dims(tensor: &[u8]) -> Result<(String, Vec<i64>), String> {
    let (mut name, mut dims) = (String::new(), Vec::new());
    let mut reader = Reader { buf: tensor, pos: 0 };
    while let Some(item) = reader.field()? {
        match (item.number, item.payload) {
            (TENSOR_NAME, Some(bytes)) => {
                name = String::from_utf8(bytes.to_vec()).map_err(|_| "model.onnx: a tensor name is not UTF-8")?
            }
            (TENSOR_DIMS, None) => dims.push(item.varint as i64),
            (TENSOR_DIMS, Some(packed)) => {
                let mut packed = Reader { buf: packed, pos: 0 };
                while packed.pos < packed.buf.len() {
                    dims.push(packed.varint()? as i64);
                }
            }
            _ => {}
        }
    }
    Ok((name, dims))
}

/// A `TensorProto` holding F32 `values` in raw little-endian bytes.
fn f32_tensor(name: &str, dims: &[i64], values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 4 + name.len() + 32);
    for &dim in dims {
        write_key(&mut out, TENSOR_DIMS, VARINT);
        write_varint(&mut out, dim as u64);
    }
    write_key(&mut out, TENSOR_DATA_TYPE, VARINT);
    write_varint(&mut out, FLOAT);
    write_len(&mut out, TENSOR_NAME, name.as_bytes());
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_len(&mut out, TENSOR_RAW_DATA, &raw);
    out
}

fn write_key(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    write_varint(out, (u64::from(field) << 3) | u64::from(wire_type));
}

fn write_len(out: &mut Vec<u8>, field: u32, payload: &[u8]) {
    write_key(out, field, LEN);
    write_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// One field of a message: its number, its bytes as they are (key
/// included), and its payload when length-delimited (else its varint).
struct Field<'a> {
    number: u32,
    raw: &'a [u8],
    payload: Option<&'a [u8]>,
    varint: u64,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.buf.get(self.pos).ok_or("model.onnx: truncated varint")?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("model.onnx: varint too long".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.buf.len()).ok_or("model.onnx: truncated field")?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn field(&mut self) -> Result<Option<Field<'a>>, String> {
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        let start = self.pos;
        let key = self.varint()?;
        let (number, wire_type) = ((key >> 3) as u32, (key & 7) as u8);
        let (mut payload, mut varint) = (None, 0);
        match wire_type {
            VARINT => varint = self.varint()?,
            FIXED64 => {
                self.take(8)?;
            }
            LEN => {
                let len = usize::try_from(self.varint()?).map_err(|_| "model.onnx: field too long")?;
                payload = Some(self.take(len)?);
            }
            FIXED32 => {
                self.take(4)?;
            }
            other => return Err(format!("model.onnx: unsupported protobuf wire type {other}")),
        }
        Ok(Some(Field { number, raw: &self.buf[start..self.pos], payload, varint }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tensor as an exporter might write it: packed dims, int8 raw data,
    /// and a field this module does not know (doc_string, 12).
    fn int8_tensor(name: &str, dims: &[i64], data: &[i8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut packed = Vec::new();
        dims.iter().for_each(|&d| write_varint(&mut packed, d as u64));
        write_len(&mut out, TENSOR_DIMS, &packed);
        write_key(&mut out, TENSOR_DATA_TYPE, VARINT);
        write_varint(&mut out, 3); // INT8
        write_len(&mut out, TENSOR_NAME, name.as_bytes());
        write_len(&mut out, 12, b"kept as is");
        write_len(&mut out, TENSOR_RAW_DATA, &data.iter().map(|&v| v as u8).collect::<Vec<_>>());
        out
    }

    #[test]
    fn rewrites_only_the_named_initializers_and_copies_the_rest() {
        let (keep, change) = (int8_tensor("keep_q", &[2], &[1, 2]), int8_tensor("w_q", &[1, 2], &[3, 4]));
        let mut graph = Vec::new();
        write_len(&mut graph, 1, b"a node, untouched");
        write_len(&mut graph, GRAPH_INITIALIZER, &keep);
        write_len(&mut graph, GRAPH_INITIALIZER, &change);
        let mut model = Vec::new();
        write_key(&mut model, 1, VARINT); // ir_version
        write_varint(&mut model, 8);
        write_len(&mut model, MODEL_GRAPH, &graph);

        let out = rewrite_fields(&model, MODEL_GRAPH, |graph| {
            rewrite_fields(graph, GRAPH_INITIALIZER, |tensor| {
                let (name, dims) = tensor_name_and_dims(tensor)?;
                Ok((name == "w_q").then(|| f32_tensor(&name, &dims, &[0.5, -1.5])))
            })
            .map(Some)
        })
        .unwrap();

        let mut expected_graph = Vec::new();
        write_len(&mut expected_graph, 1, b"a node, untouched");
        write_len(&mut expected_graph, GRAPH_INITIALIZER, &keep);
        write_len(&mut expected_graph, GRAPH_INITIALIZER, &f32_tensor("w_q", &[1, 2], &[0.5, -1.5]));
        let mut expected = Vec::new();
        write_key(&mut expected, 1, VARINT);
        write_varint(&mut expected, 8);
        write_len(&mut expected, MODEL_GRAPH, &expected_graph);
        assert_eq!(out, expected);
        assert_eq!(tensor_name_and_dims(&f32_tensor("x", &[300, 2], &[0.0; 600])).unwrap(), ("x".into(), vec![300, 2]));
    }

    #[test]
    fn varints_round_trip() {
        for value in [0, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut out = Vec::new();
            write_varint(&mut out, value);
            assert_eq!(Reader { buf: &out, pos: 0 }.varint().unwrap(), value);
        }
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let mut model = Vec::new();
        write_len(&mut model, MODEL_GRAPH, &[1, 2, 3, 4]);
        model.truncate(4);
        let err = rewrite_fields(&model, MODEL_GRAPH, |_| Ok(None)).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
    }
}
