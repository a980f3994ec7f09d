//! `replicate data lfw --from DIR` on a small generated tree of JPEGs: twenty people in LFW's
//! layout with official lists in its formats, built into the loader's files and loaded back with
//! every check; colour is reduced as Pillow's luma, the centre window averaged; a missing list, a
//! JPEG of another size and a pair naming an image a person does not have are clear errors.

use std::path::Path;

use replicate::data::lfw::{Lfw, Sizes, PIXELS};
use replicate::data::lfw_build::build;

mod common;

use common::temp_dir;

/// Person k of 20 is `P{k:02}` with 2 images when k is even, 1 when odd; image j of person k is
/// a flat colour (or gray) that encodes (k, j).
fn shade(k: usize, j: usize) -> [u8; 3] {
    [(40 + 9 * k) as u8, (60 + 50 * j) as u8, (200 - 7 * k) as u8]
}

fn write_jpeg(path: &Path, rgb: [u8; 3], side: u32, gray: bool) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(file, 100);
    if gray {
        let pixels = vec![rgb[0]; (side * side) as usize];
        encoder.encode(&pixels, side, side, image::ColorType::L8).unwrap();
    } else {
        let pixels: Vec<u8> = (0..side * side).flat_map(|_| rgb).collect();
        encoder.encode(&pixels, side, side, image::ColorType::Rgb8).unwrap();
    }
}

fn images_of(k: usize) -> usize {
    if k.is_multiple_of(2) {
        2
    } else {
        1
    }
}

/// A tree of 20 people and the six lists: View 2 has ten folds of people (2f, 2f + 1), each with
/// one same pair (2f's two images) and one different pair; View 1 trains on people 0-9 and
/// tests on 10-19.
fn tree(dir: &Path, gray: bool) {
    for k in 0..20 {
        for j in 1..=images_of(k) {
            let name = format!("P{k:02}");
            write_jpeg(&dir.join("lfw").join(&name).join(format!("{name}_{j:04}.jpg")), shade(k, j), 250, gray);
        }
    }
    let mut pairs = String::from("10\t1\n");
    let mut people = String::from("10\n");
    for f in 0..10 {
        let (a, b) = (2 * f, 2 * f + 1);
        pairs.push_str(&format!("P{a:02}\t1\t2\nP{a:02}\t1\tP{b:02}\t1\n"));
        people.push_str(&format!("2\nP{a:02}\t2\nP{b:02}\t1\n"));
    }
    std::fs::write(dir.join("pairs.txt"), pairs).unwrap();
    std::fs::write(dir.join("people.txt"), people).unwrap();
    std::fs::write(dir.join("pairsDevTrain.txt"), "1\nP00\t1\t2\nP00\t1\tP01\t1\n").unwrap();
    std::fs::write(dir.join("pairsDevTest.txt"), "1\nP10\t1\t2\nP10\t2\tP11\t1\n").unwrap();
    let list = |range: std::ops::Range<usize>| -> String {
        format!("{}\n", range.len()) + &range.map(|k| format!("P{k:02}\t{}\n", images_of(k))).collect::<String>()
    };
    std::fs::write(dir.join("peopleDevTrain.txt"), list(0..10)).unwrap();
    std::fs::write(dir.join("peopleDevTest.txt"), list(10..20)).unwrap();
}

const SIZES: Sizes = Sizes {
    images: 30,
    identities: 20,
    view1_train_people: 10,
    view1_test_people: 10,
    view1_train_pairs: 2,
    view1_test_pairs: 2,
    view2_pairs_per_fold: 2,
};

#[test]
fn a_tree_of_colour_jpegs_builds_the_loaders_files() {
    let source = temp_dir("lfw-build-source");
    tree(&source, false);
    let out = temp_dir("lfw-build-out");
    let mut reported = Vec::new();
    let built = build(&source, &out, |done, total| reported.push((done, total))).unwrap();
    assert_eq!((built.images, built.identities, built.variant), (30, 20, "colour"));
    assert_eq!(reported.last(), Some(&(20, 20)));
    let lfw = Lfw::load_sized(&out, &SIZES).unwrap();
    assert_eq!(lfw.names[3], "P03");
    assert_eq!(lfw.labels[..5], [0, 0, 1, 2, 2]);
    // View 2's fold 4: people 8 and 9; its same pair is P08's two images (indices 12, 13).
    let pair = lfw.view2_pairs.iter().find(|p| p.fold == 4 && p.same).unwrap();
    assert_eq!((pair.a, pair.b), (12, 13));
    assert_eq!(lfw.view1_test_pairs[1].a, 16, "P10's second image");
    // A flat colour becomes Pillow's luma of it, everywhere in the window (JPEG at quality 100 is
    // within a level or two).
    let [r, g, b] = shade(8, 2).map(u32::from);
    let luma = ((r * 19_595 + g * 38_470 + b * 7_471 + 0x8000) >> 16) as i32;
    let image = &lfw.images[13 * PIXELS..14 * PIXELS];
    assert!(image.iter().all(|&p| (p as i32 - luma).abs() <= 2), "luma {luma}, got {:?}", &image[..8]);
    let source_note = std::fs::read_to_string(out.join("SOURCE.txt")).unwrap();
    assert!(source_note.contains("30 colour JPEGs of 20 people") && source_note.contains("own"), "{source_note}");
    // The official loader refuses a copy that is not the whole of LFW, naming what differs.
    let e = Lfw::load(&out).err().expect("not the whole of LFW").to_string();
    assert!(e.contains("images-64x64") && e.contains("expected 13233"), "{e}");
}

#[test]
fn grayscale_jpegs_are_named_as_such() {
    let source = temp_dir("lfw-build-gray");
    tree(&source, true);
    let built = build(&source, &temp_dir("lfw-build-gray-out"), |_, _| {}).unwrap();
    assert_eq!(built.variant, "grayscale");
}

#[test]
fn a_missing_list_a_wrong_size_and_an_unknown_image_are_clear_errors() {
    let error = |prepare: &dyn Fn(&Path), name: &str| -> String {
        let source = temp_dir(name);
        tree(&source, true);
        prepare(&source);
        build(&source, &temp_dir(&format!("{name}-out")), |_, _| {}).unwrap_err().to_string()
    };
    let e = error(&|d| std::fs::remove_file(d.join("peopleDevTest.txt")).unwrap(), "lfw-build-no-list");
    assert!(e.contains("peopleDevTest.txt") && e.contains("missing"), "{e}");
    let e = error(&|d| write_jpeg(&d.join("lfw/P05/P05_0001.jpg"), [9, 9, 9], 200, true), "lfw-build-size");
    assert!(e.contains("P05_0001.jpg") && e.contains("200×200") && e.contains("250×250"), "{e}");
    let e = error(
        &|d| std::fs::write(d.join("pairsDevTrain.txt"), "1\nP00\t1\t3\nP00\t1\tP01\t1\n").unwrap(),
        "lfw-build-pair",
    );
    assert!(
        e.contains("pairsDevTrain.txt") && e.contains("line 2") && e.contains("P00 has 2 images, not an image 3"),
        "{e}"
    );
    let e = error(&|d| std::fs::remove_file(d.join("lfw/P04/P04_0002.jpg")).unwrap(), "lfw-build-count");
    assert!(e.contains("pairs.txt") && e.contains("P04 has 1 images, not an image 2") && e.contains("--from"), "{e}");
}
