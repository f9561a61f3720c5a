"""read_points: every supported format round-trips, every bad input gets its own clear error."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Point

from gcnn_rnn.core.errors import InputDataError
from gcnn_rnn.core.io import read_points, suggest_utm

XY = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0], [50.0, 60.0]])
VALS = np.array([1.0, 2.5, 3.0, 4.0, 7.5])


def _gdf(crs="EPSG:32631", values=VALS, xy=XY, z=None):
    geoms = [Point(x, y) if z is None else Point(x, y, zz) for (x, y), zz in
             zip(xy, z if z is not None else [None] * len(xy))]
    return gpd.GeoDataFrame({"cu": values, "name": [chr(97 + i) for i in range(len(values))]},
                            geometry=geoms, crs=crs)


@pytest.mark.parametrize("ext,driver", [(".gpkg", "GPKG"), (".shp", "ESRI Shapefile"),
                                        (".geojson", "GeoJSON")])
def test_vector_formats_round_trip(tmp_path, ext, driver):
    path = tmp_path / f"pts{ext}"
    _gdf().to_file(path, driver=driver)
    pts = read_points(path, "cu")
    assert pts.n == 5 and pts.ndim == 2
    np.testing.assert_allclose(pts.coords, XY)
    np.testing.assert_allclose(pts.values, VALS)
    assert pts.epsg == 32631
    assert pts.field == "cu" and pts.dropped == {}


def test_geopackage_named_layer(tmp_path):
    path = tmp_path / "multi.gpkg"
    _gdf().to_file(path, layer="first", driver="GPKG")
    _gdf(values=VALS * 10).to_file(path, layer="second", driver="GPKG")
    pts = read_points(path, "cu", layer="second")
    np.testing.assert_allclose(pts.values, VALS * 10)
    assert pts.source.endswith("|layername=second")
    with pytest.raises(InputDataError, match=r"no layer 'third'.*first.*second"):
        read_points(path, "cu", layer="third")


def test_csv_with_named_columns_and_crs(tmp_path):
    path = tmp_path / "pts.csv"
    pd.DataFrame({"E": XY[:, 0], "N": XY[:, 1], "depth": [1, 2, 3, 4, 5], "cu": VALS}).to_csv(
        path, index=False)
    pts = read_points(path, "cu", x_field="E", y_field="N", crs="EPSG:28992")
    np.testing.assert_allclose(pts.coords, XY)
    assert pts.epsg == 28992
    pts3 = read_points(path, "cu", x_field="E", y_field="N", z_field="depth", crs="EPSG:28992")
    assert pts3.ndim == 3
    np.testing.assert_allclose(pts3.coords[:, 2], [1, 2, 3, 4, 5])


def test_csv_detects_xy_and_needs_crs(tmp_path):
    path = tmp_path / "pts.csv"
    pd.DataFrame({"x": XY[:, 0], "y": XY[:, 1], "cu": VALS}).to_csv(path, index=False)
    with pytest.raises(InputDataError, match=r"no coordinate reference system.*--crs"):
        read_points(path, "cu")
    assert read_points(path, "cu", crs="EPSG:3035").n == 5


def test_3d_from_z_geometry(tmp_path):
    path = tmp_path / "pts3d.gpkg"
    _gdf(z=[-1.0, -2.0, -3.0, -4.0, -5.0]).to_file(path, driver="GPKG")
    pts = read_points(path, "cu")
    assert pts.ndim == 3
    np.testing.assert_allclose(pts.coords[:, 2], [-1, -2, -3, -4, -5])


def test_meuse_sample_data(meuse_gpkg, meuse_csv):
    a = read_points(meuse_gpkg, "zinc", layer="meuse")
    b = read_points(meuse_csv, "zinc", crs="EPSG:28992")
    assert a.n == b.n == 155
    np.testing.assert_allclose(a.coords, b.coords)
    assert a.values.min() == 113 and a.values.max() == 1839


def test_extra_fields_carried(tmp_path):
    path = tmp_path / "pts.gpkg"
    _gdf().to_file(path, driver="GPKG")
    pts = read_points(path, "cu", extra_fields=["name"])
    assert list(pts.attributes["name"]) == list("abcde")
    sub = pts.subset(np.array([4, 0]))
    assert list(sub.attributes["name"]) == ["e", "a"] and list(sub.values) == [7.5, 1.0]


# ------------------------------------------------------------------------- bad input
def test_missing_file(tmp_path):
    with pytest.raises(InputDataError, match=r"not found.*nothere\.gpkg"):
        read_points(tmp_path / "nothere.gpkg", "cu")


def test_unknown_field_lists_numeric_fields(tmp_path):
    path = tmp_path / "pts.gpkg"
    _gdf().to_file(path, driver="GPKG")
    with pytest.raises(InputDataError, match=r"no field 'zn'; numeric fields are \['cu'\]"):
        read_points(path, "zn")


def test_non_numeric_field(tmp_path):
    path = tmp_path / "pts.gpkg"
    _gdf().to_file(path, driver="GPKG")
    with pytest.raises(InputDataError, match=r"field 'name' is not numeric \(e\.g\. value 'a'\)"):
        read_points(path, "name")


def test_non_point_geometries(tmp_path):
    path = tmp_path / "lines.gpkg"
    gpd.GeoDataFrame({"cu": [1.0, 2.0]},
                     geometry=[LineString([(0, 0), (1, 1)]), LineString([(1, 0), (2, 2)])],
                     crs="EPSG:32631").to_file(path, driver="GPKG")
    with pytest.raises(InputDataError, match=r"expected point geometries, found \['LineString'\]"):
        read_points(path, "cu")


def test_empty_layer(tmp_path):
    path = tmp_path / "empty.gpkg"
    _gdf().iloc[:0].to_file(path, driver="GPKG")
    with pytest.raises(InputDataError, match="empty"):
        read_points(path, "cu")


def test_too_few_points(tmp_path):
    path = tmp_path / "two.gpkg"
    _gdf(values=VALS[:2], xy=XY[:2]).to_file(path, driver="GPKG")
    with pytest.raises(InputDataError, match=r"only 2 usable point\(s\).*at least 3"):
        read_points(path, "cu")


def test_all_equal_values(tmp_path):
    path = tmp_path / "flat.gpkg"
    _gdf(values=np.full(5, 3.3)).to_file(path, driver="GPKG")
    with pytest.raises(InputDataError, match=r"all 5 values of field 'cu' are equal \(3\.3\)"):
        read_points(path, "cu")


def test_null_nan_inf_dropped_with_count(tmp_path, caplog):
    path = tmp_path / "gaps.csv"
    pd.DataFrame({"x": [0, 1, 2, 3, 4, 5], "y": [0, 5, 1, 7, 2, 9],
                  "cu": [1.0, None, 3.0, np.inf, 5.0, 6.0]}).to_csv(path, index=False)
    with caplog.at_level(logging.WARNING, logger="gcnn_rnn"):
        pts = read_points(path, "cu", crs="EPSG:32631")
    assert pts.n == 4 and pts.dropped == {"null": 2}
    assert "dropped 2 of 6" in caplog.text


def test_missing_crs_in_vector_source(tmp_path):
    path = tmp_path / "nocrs.shp"
    with pytest.warns(UserWarning):
        _gdf(crs=None).to_file(path)
    assert not path.with_suffix(".prj").exists()
    with pytest.raises(InputDataError, match=r"nocrs\.shp: has no coordinate reference system"):
        read_points(path, "cu")
    assert read_points(path, "cu", crs="EPSG:32631").epsg == 32631


def test_geographic_crs_refused_with_utm_suggestion(tmp_path):
    path = tmp_path / "wgs84.gpkg"
    lonlat = np.array([[6.0, 50.0], [6.1, 50.0], [6.0, 50.1], [6.1, 50.1], [6.05, 50.05]])
    _gdf(crs="EPSG:4326", xy=lonlat).to_file(path, driver="GPKG")
    with pytest.raises(InputDataError, match=r"geographic.*--reproject EPSG:32632"):
        read_points(path, "cu")
    pts = read_points(path, "cu", reproject="EPSG:32632")
    assert pts.epsg == 32632
    # 0.1 degree of longitude at 50 N is about 7.2 km
    assert 7000 < pts.coords[1, 0] - pts.coords[0, 0] < 7300


def test_suggest_utm_hemispheres():
    assert suggest_utm(5.7, 50.9) == "EPSG:32631"
    assert suggest_utm(-70.6, -33.4) == "EPSG:32719"


def test_coincident_points_averaged_or_refused(tmp_path, caplog):
    path = tmp_path / "dups.gpkg"
    xy = np.vstack([XY, XY[1]])
    vals = np.append(VALS, 4.5)  # the twin of (100, 0) whose value is 2.5
    _gdf(values=vals, xy=xy).to_file(path, driver="GPKG")
    with caplog.at_level(logging.WARNING, logger="gcnn_rnn"):
        pts = read_points(path, "cu")
    assert pts.n == 5 and pts.dropped == {"coincident": 1}
    i = int(np.where((pts.coords == [100.0, 0.0]).all(axis=1))[0][0])
    assert pts.values[i] == pytest.approx(3.5)
    assert "averaged" in caplog.text
    # order of first occurrences is kept
    np.testing.assert_allclose(pts.coords, XY)
    with pytest.raises(InputDataError, match=r"share coordinates.*\(100\.0, 0\.0\)"):
        read_points(path, "cu", duplicates="error")


def test_written_geopackages_are_version_1_2(tmp_path):
    """GDAL >= 3.7 writes GeoPackage 1.4 by default, which GDAL 3.6 (QGIS 3.22) opens with a
    "partially supported" warning; the engine's point files and synthetic samples are 1.2
    (SQLite user_version 10200, GeoPackage application_id 'GPKG')."""
    import sqlite3

    from gcnn_rnn.core.io import write_points
    from gcnn_rnn.core.synth import SynthConfig, synthesize, write_samples
    from gcnn_rnn.core.variogram.models import parse_model

    out = write_points(_gdf(), tmp_path / "pts.gpkg", "pts")
    assert read_points(out, "cu", layer="pts").n == 5
    result = synthesize(SynthConfig(parse_model("1 Exp(100)"), n=12, seed=0, cell_size=20.0))
    paths = [out, write_samples(result, tmp_path / "synth.gpkg", "samples")]
    for path in paths:
        with sqlite3.connect(path) as db:
            assert db.execute("pragma user_version").fetchone()[0] == 10200, path
            assert db.execute("pragma application_id").fetchone()[0] == 0x47504B47, path


def test_write_points_is_atomic(tmp_path, monkeypatch):
    from gcnn_rnn.core.io import write_points

    gdf = _gdf()
    out = write_points(gdf, tmp_path / "pts.gpkg", "pts")
    assert read_points(out, "cu", layer="pts").n == 5
    # a write that fails half-way leaves neither the target nor a temporary file behind
    def broken(self, path, **kwargs):
        open(path, "wb").write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gpd.GeoDataFrame, "to_file", broken)
    from gcnn_rnn.core.errors import EngineIOError

    with pytest.raises(EngineIOError, match="No space left"):
        write_points(gdf, tmp_path / "new.gpkg", "pts")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pts.gpkg"]
