"""Bringing a finished job's GLB into the scene, on the rig, with its baked texture."""

from __future__ import annotations

import json
from pathlib import Path

import bpy
from mathutils import Matrix

from joker_core.conventions import BLENDER_TO_FLAME
from joker_core.errors import JokerError
from joker_core.protocol import RIG_HEAD_GLB

RESULTS_COLLECTION = "Joker Results"
JOB_FOLDER_KEY = "joker_job_folder"
SOURCE_KEY = "joker_source"  # the file in the job folder a result was imported from
METRICS = "metrics.json"


def head_to_import(marching_cubes: Path, choice: str) -> Path:
    """Which head of a finished job to import, given its marching-cubes head (head.glb):
    `choice` "marching_cubes" that one, "rig" the rig's topology beside it (head_rig.glb), or
    "closest": the rig's topology when the job measured its mesh at least as close to the
    targets as the marching-cubes mesh (held-out mesh-render PSNR in metrics.json), else
    marching cubes (also when it measured nothing)."""
    folder = marching_cubes.parent
    rig = folder / RIG_HEAD_GLB
    if choice == "rig" and not rig.is_file():
        raise JokerError(f"the job made no head in the rig's topology ({RIG_HEAD_GLB} in {folder})",
                         "choose Marching cubes in the Generate panel, or update the server")
    if choice == "rig" or (choice == "closest" and rig.is_file() and _rig_measures_closer(folder / METRICS)):
        return rig
    return marching_cubes


def _rig_measures_closer(metrics_path: Path) -> bool:
    try:
        figures = json.loads(metrics_path.read_text(encoding="utf-8"))
        marching_cubes, rig = figures["mesh_psnr_db"], figures["registration"]["mesh_psnr_db"]
        return float(rig) >= float(marching_cubes)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def results_collection(scene: bpy.types.Scene) -> bpy.types.Collection:
    collection = bpy.data.collections.get(RESULTS_COLLECTION)
    if collection is None:
        collection = bpy.data.collections.new(RESULTS_COLLECTION)
    if collection.name not in scene.collection.children:
        scene.collection.children.link(collection)
    return collection


def import_result(scene: bpy.types.Scene, glb_path: Path, name: str, rig_matrix: Matrix | None,
                  collection: bpy.types.Collection | None = None) -> bpy.types.Object:
    """Import `glb_path` as one object named `name` in `collection` (default: the results
    collection), placed by `rig_matrix`, the rig armature's world matrix.

    The GLB is in the FLAME frame and Blender's glTF importer turns it Z-up, which is the
    rig's own orientation, so the result lands on an unmoved rig as is (None: unmoved); a
    moved rig's transform is carried over. Nothing stays in the scene if the import fails."""
    if not glb_path.is_file():
        raise JokerError(f"result file {glb_path} is missing", "re-import from the job folder or generate again")
    before = set(bpy.data.objects)
    try:
        result = bpy.ops.import_scene.gltf(filepath=str(glb_path))
        if "FINISHED" not in result:
            raise JokerError(f"Blender could not import {glb_path.name}", "open the job's log in its folder")
        new_objects = [obj for obj in bpy.data.objects if obj not in before]
        meshes = [obj for obj in new_objects if obj.type == "MESH"]
        if len(meshes) != 1:
            raise JokerError(f"{glb_path.name} holds {len(meshes)} meshes, expected one head",
                             "re-generate; the result file is not a Joker head")
    except BaseException:
        for obj in [obj for obj in bpy.data.objects if obj not in before]:
            bpy.data.objects.remove(obj)
        raise
    head = meshes[0]
    for obj in new_objects:
        if obj is not head:
            bpy.data.objects.remove(obj)
    collection = collection or results_collection(scene)
    for owner in list(head.users_collection):
        owner.objects.unlink(head)
    collection.objects.link(head)
    head.name = name
    if rig_matrix is not None:
        head.matrix_world = rig_matrix @ Matrix(BLENDER_TO_FLAME.tolist()) @ head.matrix_world
    head[JOB_FOLDER_KEY] = str(glb_path.parent)
    head[SOURCE_KEY] = glb_path.name
    return head
