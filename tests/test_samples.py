"""The explained test images: one per patient id (report/samples.py)."""

import numpy as np

from report.samples import distinct_patients

NAMES = np.array(["test/PNEUMONIA/person1_virus_1.jpeg", "test/PNEUMONIA/person1_virus_2.jpeg",
                  "test/PNEUMONIA/person2_bacteria_3.jpeg", "test/NORMAL/IM-0001-0001.jpeg",
                  "test/NORMAL/IM-0001-0002.jpeg", "test/NORMAL/NORMAL2-IM-0007-0001.jpeg"])


def test_one_image_per_patient_in_draw_order():
    # catches: keeping the last image of a patient instead of the first drawn, or no de-duplication
    assert distinct_patients(np.array([1, 0, 2, 3, 4, 5]), NAMES, 10).tolist() == [1, 2, 3, 5]


def test_stops_at_k():
    # catches: returning every distinct patient, ignoring k
    assert distinct_patients(np.array([5, 4, 3, 2, 1, 0]), NAMES, 2).tolist() == [5, 4]
