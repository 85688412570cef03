"""The interactive try-it of notebook 07: paint a hole on a face (ipycanvas), pick a face, a mask bucket
or a photo (ipywidgets), run the model and see every stage with its metrics. The pure parts (strokes to a
mask, the faces, running the model, the figure) are :mod:`isfr.apps.tryit`; ipycanvas and ipywidgets are
imported only when :func:`widget` is called.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from isfr.apps.tryit import (
    MASK_CHOICES,
    Examples,
    Face,
    figure,
    figure_png,
    metrics_table,
    photo_face,
    run,
    strokes_to_mask,
)

# ---------------------------------------------------------------- the widget
_TABLE_CSS = ("<style>.isfr-tryit-metrics{border-collapse:collapse;font-size:12px}"
              ".isfr-tryit-metrics th,.isfr-tryit-metrics td{padding:2px 10px;text-align:right;"
              "border-bottom:1px solid #ddd}</style>")


def _face_rgb(face: Face, size: int) -> np.ndarray:
    from isfr.data import tensor_to_image

    return np.asarray(tensor_to_image(face.image).resize((size, size), Image.Resampling.BICUBIC))


def widget(model: torch.nn.Module, examples: Examples, note: str = "", checkpoint: str | os.PathLike | None = None,
           info: dict[str, Any] | None = None, image_index: int = 0, bucket: str = "paint", canvas_size: int = 320,
           brush: int = 12, identity: Any = "auto"):
    """A canvas to paint a hole on a face (ipycanvas), a face picker, a photo upload, a mask drop-down
    (paint, or a manifest mask of a bucket, to which painted strokes are added) and a Run button that
    shows :func:`figure` and the metrics. Returns the ``ipywidgets.VBox`` (``.tryit`` holds its state)."""
    import ipywidgets as W
    from ipycanvas import MultiCanvas, hold_canvas

    r = model.cfg.resolution
    preprocess = getattr(model, "preprocess", "center_crop")
    state: dict[str, Any] = {"strokes": [], "drawing": False, "face": examples.face(image_index),
                             "face_note": "", "picked": None}
    canvas = MultiCanvas(2, width=canvas_size, height=canvas_size,
                         layout=W.Layout(width=f"{canvas_size}px", height=f"{canvas_size}px"))
    bg, fg = canvas[0], canvas[1]
    face_pick = W.BoundedIntText(value=image_index % len(examples), min=0, max=len(examples) - 1,
                                 description="face", layout=W.Layout(width="160px"))
    upload = W.FileUpload(accept="image/*", multiple=False, description="Upload photo")
    mask_pick = W.Dropdown(options=list(MASK_CHOICES), value=bucket if bucket in MASK_CHOICES else "paint",
                           description="mask", layout=W.Layout(width="200px"))
    brush_w = W.IntSlider(value=brush, min=1, max=max(2, canvas_size // 6), description="brush",
                          layout=W.Layout(width="260px"))
    clear_b = W.Button(description="Clear strokes", icon="eraser")
    run_b = W.Button(description="Run", button_style="primary", icon="play")
    status = W.HTML(value="Paint the hole with the mouse (or pick a bucket), then press <b>Run</b>.")
    result_img = W.Image(format="png", layout=W.Layout(max_width="100%"))
    table = W.HTML()
    colour = "rgba(255, 40, 40, 0.75)"

    def draw_face() -> None:
        bg.put_image_data(_face_rgb(state["face"], canvas_size), 0, 0)

    def draw_mask_layer() -> None:
        with hold_canvas():
            fg.clear()
            picked = state["picked"]
            if picked is not None:
                hole = picked.mask[0, 0].numpy() > 0.5
                big = np.asarray(Image.fromarray(hole.astype(np.uint8) * 255).resize(
                    (canvas_size, canvas_size), Image.Resampling.NEAREST)) > 127
                rgba = np.zeros((canvas_size, canvas_size, 4), np.uint8)
                rgba[big] = (255, 40, 40, 190)
                fg.put_image_data(rgba, 0, 0)
            fg.stroke_style = fg.fill_style = colour
            fg.line_cap = fg.line_join = "round"
            for stroke, rad in state["strokes"]:
                fg.line_width = 2 * rad
                if len(stroke) > 1:
                    fg.stroke_lines(stroke)
                x, y = stroke[0]
                fg.fill_circle(x, y, rad)

    def pick_mask() -> None:
        state["picked"] = None if mask_pick.value == "paint" else examples.mask(face_pick.value, mask_pick.value)

    def current_mask() -> Tensor:
        m = torch.zeros(1, 1, r, r)
        for stroke, rad in state["strokes"]:  # the brush may change between strokes
            m = torch.maximum(m, strokes_to_mask([stroke], canvas_size, rad, r))
        if state["picked"] is not None:
            m = torch.maximum(m, state["picked"].mask)
        return m

    def on_down(x: float, y: float) -> None:
        state["drawing"] = True
        state["strokes"].append(([(x, y)], brush_w.value))
        fg.fill_style = colour
        fg.fill_circle(x, y, brush_w.value)

    def on_move(x: float, y: float) -> None:
        if not state["drawing"] or not state["strokes"]:
            return
        pts, rad = state["strokes"][-1]
        x0, y0 = pts[-1]
        pts.append((x, y))
        fg.stroke_style, fg.line_width, fg.line_cap = colour, 2 * rad, "round"
        fg.stroke_line(x0, y0, x, y)

    def on_up(x: float, y: float) -> None:
        if state["drawing"]:
            on_move(x, y)
        state["drawing"] = False

    def on_face(change: Any) -> None:
        state["face"], state["face_note"] = examples.face(face_pick.value), ""
        on_mask(change)
        draw_face()

    def on_mask(change: Any) -> None:
        try:
            pick_mask()
        except ValueError as err:
            status.value = f"<span style='color:#b00'>{err}</span>"
            state["picked"] = None
        draw_mask_layer()

    def on_upload(change: Any) -> None:
        files = upload.value
        if not files:
            return
        f = files[0]
        try:
            photo = Image.open(io.BytesIO(bytes(f["content"])))
            state["face"], state["face_note"] = photo_face(photo, r, preprocess, name=f.get("name", "photo"))
        except Exception as err:  # an unreadable upload: say so, keep the current face
            status.value = f"<span style='color:#b00'>Could not use the upload: {err}</span>"
            return
        status.value = state["face_note"]
        draw_face()
        draw_mask_layer()

    def on_clear(_: Any) -> None:
        state["strokes"].clear()
        draw_mask_layer()

    def on_run(_: Any) -> None:
        m = current_mask()
        if not m.any():
            status.value = "The mask is empty: paint a hole on the face or pick a bucket first."
            return
        status.value = "Running ..."
        try:
            res = run(model, state["face"].image, m, identity=identity)
            picked = state["picked"]
            mask_name = ("painted" if picked is None else picked.name + (" + painted" if state["strokes"] else ""))
            fig = figure(res, "\n".join(s for s in (note, state["face_note"]) if s), checkpoint, info,
                         mask_name=mask_name, face_name=state["face"].name)
            result_img.value = figure_png(fig)
            table.value = _TABLE_CSS + metrics_table(res).rename_axis(None).to_html(
                float_format=lambda v: f"{v:.3f}", border=0, classes="isfr-tryit-metrics")
            state["result"] = res
            status.value = f"Done: hole {res.hole_ratio:.1%}."
        except Exception as err:  # show it: a widget callback's exception is otherwise lost
            status.value = f"<span style='color:#b00'>{type(err).__name__}: {err}</span>"

    canvas.on_mouse_down(on_down)
    canvas.on_mouse_move(on_move)
    canvas.on_mouse_up(on_up)
    canvas.on_mouse_out(lambda x, y: state.update(drawing=False))
    canvas.on_client_ready(lambda: (draw_face(), draw_mask_layer()))
    face_pick.observe(on_face, names="value")
    upload.observe(on_upload, names="value")
    mask_pick.observe(on_mask, names="value")
    clear_b.on_click(on_clear)
    run_b.on_click(on_run)
    pick_mask()
    draw_face()
    draw_mask_layer()
    controls = W.VBox([face_pick, upload, mask_pick, brush_w, W.HBox([clear_b, run_b]), status],
                      layout=W.Layout(padding="0 0 0 12px"))
    box = W.VBox([W.HBox([canvas, controls]), result_img, table])
    box.tryit = {"state": state, "canvas": canvas, "run": run_b, "clear": clear_b, "mask": mask_pick,
                 "face": face_pick, "upload": upload, "brush": brush_w, "status": status, "image": result_img,
                 "current_mask": current_mask, "on_run": on_run}
    return box
