"""Enums that moved between QGIS 3.22 and 4.x, resolved once.

QGIS 3.36 moved many Processing enums to ``Qgis.*`` and QGIS 4 (Qt6) drops the old spellings;
everything else in the plugin takes them from here.
"""

from __future__ import annotations

from qgis.core import (
    Qgis,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
)


def _pick(new_owner, new_enum: str, member: str, old_owner, old_name: str):
    enum = getattr(new_owner, new_enum, None)
    if enum is not None and hasattr(enum, member):
        return getattr(enum, member)
    return getattr(old_owner, old_name)


# Parameter flags
FLAG_ADVANCED = _pick(Qgis, "ProcessingParameterFlag", "Advanced",
                      QgsProcessingParameterDefinition, "FlagAdvanced")
FLAG_OPTIONAL = _pick(Qgis, "ProcessingParameterFlag", "Optional",
                      QgsProcessingParameterDefinition, "FlagOptional")

# Source types
TYPE_VECTOR_POINT = _pick(Qgis, "ProcessingSourceType", "VectorPoint",
                          QgsProcessing, "TypeVectorPoint")
TYPE_VECTOR_POLYGON = _pick(Qgis, "ProcessingSourceType", "VectorPolygon",
                            QgsProcessing, "TypeVectorPolygon")
TYPE_RASTER = _pick(Qgis, "ProcessingSourceType", "Raster", QgsProcessing, "TypeRaster")

# Number and field parameter types, file behaviour
NUMBER_INTEGER = _pick(Qgis, "ProcessingNumberParameterType", "Integer",
                       QgsProcessingParameterNumber, "Integer")
NUMBER_DOUBLE = _pick(Qgis, "ProcessingNumberParameterType", "Double",
                      QgsProcessingParameterNumber, "Double")
FIELD_NUMERIC = _pick(Qgis, "ProcessingFieldParameterDataType", "Numeric",
                      QgsProcessingParameterField, "Numeric")
FIELD_ANY = _pick(Qgis, "ProcessingFieldParameterDataType", "Any",
                  QgsProcessingParameterField, "Any")
FILE_BEHAVIOUR_FILE = _pick(Qgis, "ProcessingFileParameterBehavior", "File",
                            QgsProcessingParameterFile, "File")
FILE_BEHAVIOUR_FOLDER = _pick(Qgis, "ProcessingFileParameterBehavior", "Folder",
                              QgsProcessingParameterFile, "Folder")

# Algorithm flags
ALG_FLAG_CAN_CANCEL = _pick(Qgis, "ProcessingAlgorithmFlag", "CanCancel",
                            QgsProcessingAlgorithm, "FlagCanCancel")


def add_flag(param: QgsProcessingParameterDefinition, flag) -> QgsProcessingParameterDefinition:
    """Add ``flag`` to a parameter's flags (works with both flag spellings)."""
    param.setFlags(param.flags() | flag)
    return param
