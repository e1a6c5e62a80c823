"""DataPanel: switching and loading datasets reaches the session; bad files change nothing."""
import os

if not os.environ.get("QT_QPA_PLATFORM"):
    os.environ["QT_QPA_PLATFORM"] = "offscreen"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QColor, QImage  # noqa: E402
from PySide6.QtWidgets import QFileDialog  # noqa: E402

from bpviz.core.presets import preset_from_dict  # noqa: E402
from bpviz.session.session import Session  # noqa: E402
from bpviz.ui.data_panel import DataPanel  # noqa: E402


def make_session(layers, input_shape=(1, 12, 12), dataset="shapes", loss="cross_entropy"):
    return Session(preset_from_dict({
        "format": 1, "name": "test", "title": "test", "input_shape": list(input_shape),
        "loss": loss, "layers": layers, "dataset": dataset,
        "training": {"lr": 0.1, "mode": "mini-batch", "batch_size": 8}}))


def small_cnn(units=10, input_shape=(1, 12, 12), dataset="shapes"):
    return make_session([
        {"type": "Conv2D", "filters": 2, "kernel_size": 3, "padding": 1, "activation": "relu"},
        {"type": "MaxPool2D", "size": 2},
        {"type": "Flatten"},
        {"type": "Dense", "units": units, "activation": "softmax"}],
        input_shape=input_shape, dataset=dataset)


@pytest.fixture
def make_panel(qtbot):
    def make(session):
        panel = DataPanel(session)
        qtbot.addWidget(panel)
        panel.resize(360, 640)
        with qtbot.waitExposed(panel):
            panel.show()
        return panel
    return make


def state(session):
    return (session.dataset, session.net.config(),
            [{k: v.copy() for k, v in l.params.items()} for l in session.net.layers])


def unchanged(session, before):
    ds, config, params = before
    return (session.dataset is ds and session.net.config() == config and all(
        np.array_equal(p[k], l.params[k]) for p, l in zip(params, session.net.layers)
        for k in p))


def save_image(path, value=None, colour=None, size=(16, 16)):
    path.parent.mkdir(parents=True, exist_ok=True)
    if colour is not None:
        img = QImage(size[1], size[0], QImage.Format_RGB32)
        img.fill(QColor(*colour))
    else:
        img = QImage(size[1], size[0], QImage.Format_Grayscale8)
        img.fill(QColor(value, value, value))
    assert img.save(str(path))


def open_file(monkeypatch, *paths):
    answers = [str(p) for p in paths]
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (answers.pop(0) if answers else "", "")))


def test_switching_dataset_changes_the_session_and_input_shape(qtbot, make_panel):
    s = small_cnn()
    p = make_panel(s)
    seen = []
    p.sampleChanged.connect(seen.append)
    p.combo.setCurrentIndex(p.combo.findText("digits"))
    assert s.dataset.name == "digits" and s.net.input_shape == (1, 8, 8)
    assert p.spin.maximum() == len(s.dataset) - 1
    assert "1,797 samples" in p.info_label.text() and "1×8×8" in p.info_label.text()
    assert seen == [0]
    assert np.allclose(p.displayed()["image"], s.dataset.x[0, 0], atol=1e-6)


def test_a_dataset_the_network_cannot_take_is_refused(qtbot, make_panel):
    s = small_cnn(units=4)
    p = make_panel(s)
    before = state(s)
    p.combo.setCurrentIndex(p.combo.findText("xor"))      # 2-D points into a Conv2D
    assert "dataset 'xor'" in p.error_label.text() and "not an image" in p.error_label.text()
    assert unchanged(s, before) and p.combo.currentText() == "shapes"
    p.combo.setCurrentIndex(p.combo.findText("digits"))   # 10 classes, 4 output units
    assert "10 classes" in p.error_label.text() and "4 units" in p.error_label.text()
    assert unchanged(s, before) and p.combo.currentText() == "shapes"


def test_sample_spin_previous_next_and_preview(qtbot, make_panel):
    s = small_cnn()
    p = make_panel(s)
    seen = []
    p.sampleChanged.connect(seen.append)
    qtbot.mouseClick(p.next_button, Qt.LeftButton)
    assert s.sample_index == 1 and p.spin.value() == 1 and seen == [1]
    label = int(s.dataset.y[1])
    assert s.dataset.classes[label] in p.class_label.text()
    assert np.allclose(p.displayed()["image"], s.dataset.x[1, 0], atol=1e-6)
    p.spin.selectAll()
    qtbot.keyClicks(p.spin, "7")
    qtbot.keyClick(p.spin, Qt.Key_Return)
    assert s.sample_index == 7 and seen[-1] == 7
    p.select_sample(0)
    qtbot.mouseClick(p.prev_button, Qt.LeftButton)        # wraps to the last sample
    assert s.sample_index == len(s.dataset) - 1


def test_two_d_points_are_a_scatter_with_the_sample_marked(qtbot, make_panel):
    s = make_session([{"type": "Dense", "units": 4, "activation": "tanh"},
                      {"type": "Dense", "units": 2, "activation": "softmax"}],
                     input_shape=(2,), dataset="xor")
    p = make_panel(s)
    p.select_sample(5)
    shown = p.displayed()
    assert "image" not in shown
    assert np.allclose(shown["points"], s.dataset.x)
    assert np.allclose(shown["marker"], s.dataset.x[5:6])


def test_load_npz(qtbot, make_panel, tmp_path, monkeypatch):
    s = small_cnn()
    p = make_panel(s)
    x = np.random.default_rng(0).integers(0, 256, size=(20, 10, 10), dtype=np.uint8)
    y = np.arange(20) % 3
    path = tmp_path / "mine.npz"
    np.savez(path, x=x, y=y, classes=np.array(["a", "b", "c"]))
    open_file(monkeypatch, path)
    qtbot.mouseClick(p.file_button, Qt.LeftButton)
    assert s.dataset.name == "mine" and len(s.dataset) == 20
    assert s.net.input_shape == (1, 10, 10)
    assert np.allclose(s.dataset.x[:, 0], x / 255.0)
    assert p.combo.currentText() == "mine (loaded)" and not p.error_label.isVisible()
    p.combo.setCurrentIndex(p.combo.findText("shapes"))   # back to an embedded set ...
    assert s.dataset.name == "shapes"
    p.combo.setCurrentIndex(p.combo.findText("mine (loaded)"))   # ... and to the loaded one
    assert s.dataset.name == "mine"


def test_load_image_folder(qtbot, make_panel, tmp_path, monkeypatch):
    s = small_cnn()
    p = make_panel(s)
    root = tmp_path / "pictures"
    for k in range(3):
        save_image(root / "dark" / f"d{k}.png", value=51, size=(16, 20))
        save_image(root / "light" / f"l{k}.png", value=204)
    save_image(root / "red" / "r0.png", colour=(255, 0, 0))
    (root / "light" / "README.txt").write_text("not an image, skipped")
    (root / "empty").mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(root)))
    qtbot.mouseClick(p.folder_button, Qt.LeftButton)
    ds = s.dataset
    assert not p.error_label.isVisible(), p.error_label.text()
    assert ds.name == "pictures" and ds.classes == ("dark", "light", "red")
    assert ds.x.shape == (7, 1, 12, 12)                   # scaled to the network's input
    assert list(ds.y) == [0, 0, 0, 1, 1, 1, 2]
    assert np.allclose(ds.x[0], 0.2, atol=0.01) and np.allclose(ds.x[3], 0.8, atol=0.01)
    assert np.ptp(ds.x[6]) == 0 and 0.2 < ds.x[6].mean() < 0.6   # red → one grey level
    assert "1 non-image file(s) skipped" in ds.description


def test_a_non_image_file_changes_nothing(qtbot, make_panel, tmp_path, monkeypatch):
    s = small_cnn()
    p = make_panel(s)
    before = state(s)
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    open_file(monkeypatch, path)
    qtbot.mouseClick(p.file_button, Qt.LeftButton)
    assert "notes.txt" in p.error_label.text() and "not an image" in p.error_label.text()
    assert unchanged(s, before)


def test_a_damaged_image_in_a_folder_is_named(qtbot, make_panel, tmp_path, monkeypatch):
    s = small_cnn()
    p = make_panel(s)
    before = state(s)
    root = tmp_path / "set"
    save_image(root / "a" / "ok.png", value=10)
    (root / "b").mkdir()
    (root / "b" / "bad.png").write_bytes(b"this is not a png")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(root)))
    qtbot.mouseClick(p.folder_button, Qt.LeftButton)
    assert "b/bad.png" in p.error_label.text()
    assert unchanged(s, before)


def test_a_corrupt_npz_changes_nothing(qtbot, make_panel, tmp_path, monkeypatch):
    s = small_cnn()
    p = make_panel(s)
    before = state(s)
    path = tmp_path / "broken.npz"
    path.write_bytes(b"PK\x03\x04 definitely not a zip archive")
    open_file(monkeypatch, path)
    qtbot.mouseClick(p.file_button, Qt.LeftButton)
    assert "broken.npz" in p.error_label.text() and "damaged" in p.error_label.text()
    assert unchanged(s, before)


def test_wrong_channel_count_is_refused(qtbot, make_panel, tmp_path, monkeypatch):
    s = small_cnn(input_shape=(2, 12, 12))
    p = make_panel(s)
    before = state(s)
    path = tmp_path / "one.png"
    save_image(path, value=100)
    open_file(monkeypatch, path)
    qtbot.mouseClick(p.file_button, Qt.LeftButton)
    assert "2 channels" in p.error_label.text()
    assert unchanged(s, before)


def test_single_image_is_scaled_and_labelled(qtbot, make_panel, tmp_path, monkeypatch):
    s = small_cnn(units=4)
    p = make_panel(s)
    path = tmp_path / "circle" / "drawn.png"                # a folder named like a class
    save_image(path, value=255, size=(30, 30))
    open_file(monkeypatch, path)
    qtbot.mouseClick(p.file_button, Qt.LeftButton)
    assert s.dataset.x.shape == (1, 1, 12, 12) and np.allclose(s.dataset.x, 1.0)
    assert s.dataset.classes[s.dataset.y[0]] == "circle"


def write_idx(path, array, magic):
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big")
                                                for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_mnist_idx_finds_its_labels_or_asks(qtbot, make_panel, tmp_path, monkeypatch):
    s = small_cnn()
    p = make_panel(s)
    images = np.random.default_rng(1).integers(0, 256, size=(6, 12, 12))
    labels = np.array([0, 1, 2, 3, 4, 5])
    write_idx(tmp_path / "train-images-idx3-ubyte", images, 0x803)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels, 0x801)
    open_file(monkeypatch, tmp_path / "train-images-idx3-ubyte")
    qtbot.mouseClick(p.file_button, Qt.LeftButton)
    assert len(s.dataset) == 6 and list(s.dataset.y) == list(labels)
    assert np.allclose(s.dataset.x[:, 0], images / 255.0)
    # no partner by name: the panel asks for the labels file (second dialog)
    write_idx(tmp_path / "pictures.bin", images, 0x803)
    write_idx(tmp_path / "answers.bin", labels[::-1], 0x801)
    open_file(monkeypatch, tmp_path / "pictures.bin", tmp_path / "answers.bin")
    qtbot.mouseClick(p.file_button, Qt.LeftButton)
    assert list(s.dataset.y) == list(labels[::-1])
    # asked, and cancelled: nothing changes
    before = state(s)
    open_file(monkeypatch, tmp_path / "pictures.bin")
    qtbot.mouseClick(p.file_button, Qt.LeftButton)
    assert unchanged(s, before)


def test_refresh_follows_the_session(qtbot, make_panel):
    s = small_cnn()
    p = make_panel(s)
    s.select_sample(3)
    p.refresh()
    assert p.spin.value() == 3
    assert np.allclose(p.displayed()["image"], s.dataset.x[3, 0], atol=1e-6)


def test_labels_a_bce_output_cannot_take_are_refused(qtbot, make_panel, tmp_path, monkeypatch):
    s = make_session([{"type": "Dense", "units": 4, "activation": "tanh"},
                      {"type": "Dense", "units": 1, "activation": "sigmoid"}],
                     input_shape=(2,), dataset="xor", loss="bce")
    p = make_panel(s)
    before = state(s)
    path = tmp_path / "three.npz"
    np.savez(path, x=np.zeros((6, 2)), y=np.array([0, 1, 2, 0, 1, 2]))
    open_file(monkeypatch, path)
    qtbot.mouseClick(p.file_button, Qt.LeftButton)
    assert "BCE target 2.0 is outside [0, 1]" in p.error_label.text()
    assert unchanged(s, before)


def test_the_data_panel_says_when_the_panels_draw_another_sample(make_window, qtbot):
    """After continuous training the panels draw the last batch's first sample: the Data
    panel says which; the next step by hand draws the selected sample again."""
    from PySide6.QtCore import Qt
    w = make_window("cnn-shapes")
    s, note = w.session, w.data_panel.shown_label
    assert note.isHidden()                                  # start-up: the selected sample
    for _ in range(3):
        s.train_step()
    w.refresh()
    shown = int(s.batch[0])
    assert shown != s.sample_index and not note.isHidden()
    assert f"sample {shown}" in note.text() and f"steps sample {s.sample_index}" in note.text()
    qtbot.keyClick(w, Qt.Key.Key_F10)
    assert note.isHidden()
    x = w.panels["featureMapsDock"].displayed()["x"]
    np.testing.assert_array_equal(x, s.dataset.x[s.sample_index])
