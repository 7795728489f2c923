"""The JSON bodies of the API as pydantic models: the OpenAPI schema at ``/docs``, and what the
tests check real answers against.  ``/api/predict`` answers exactly the object
``semilearn predict --detect_faces --json`` prints for one picture."""
from __future__ import annotations

from typing import Dict, List, Optional

from pydantic import BaseModel, ConfigDict, Field


class BoxModel(BaseModel):
    """A face box in the picture's pixels: top-left corner, width, height."""

    x: int
    y: int
    w: int
    h: int


class TopClass(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    class_name: str = Field(alias="class")
    index: int
    prob: float


class FaceResult(BaseModel):
    face: int = Field(description="index of the face in the picture, left to right")
    box: BoxModel
    prediction: str = Field(description="the top class")
    index: int = Field(description="the top class's index")
    top: List[TopClass] = Field(description="the top classes, most probable first")
    probs: Dict[str, float] = Field(description="probability of every class")
    gates: Optional[Dict[str, List[float]]] = Field(
        None, description="LEAF models: the gate weight of each expert, per level (semantic, instance); "
                          "absent for other models")


class PictureResult(BaseModel):
    path: str = Field(description="the uploaded file's name")
    width: int
    height: int
    num_faces: int
    faces: List[FaceResult]
    too_small: Optional[List[BoxModel]] = Field(None, description="faces found but too small for the model")
    note: Optional[str] = Field(None, description='"no face found" when there is none')


class ModelInfo(BaseModel):
    kind: str = Field(description="checkpoint, onnx or torchscript")
    file: str
    class_names: List[str]
    input_size: int
    algorithm: Optional[str] = None
    net: Optional[str] = None
    dataset: Optional[str] = None
    leaf: bool
    gate_levels: List[str]
    checkpoint: Optional[str] = None
    shipped: Optional[dict] = Field(None, description="the shipped model's sidecar JSON (run, accuracy)")
    detector: dict
    limits: dict


class Health(BaseModel):
    status: str
    pending: int = Field(description="requests being analysed or waiting")
    capacity: int


class ErrorBody(BaseModel):
    error: str = Field(description="what was wrong and what was expected, on one line")
