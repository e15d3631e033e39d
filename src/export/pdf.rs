//! The printable handover summary: one A4 page where possible, legible in black and white.
//!
//! printpdf has no layout engine, so this module measures text with the embedded font's own
//! glyph widths, wraps it, and starts a new page when the current one is full. The font is
//! DejaVu Sans (embedded, `assets/fonts/`), so names with accents, apostrophes or other
//! scripts print as typed.

use chrono::{DateTime, Offset, Utc};
use printpdf::{
    Color, FontId, Greyscale, Line, LinePoint, Mm, Op, PaintMode, ParsedFont, PdfDocument,
    PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt, Rect, TextItem,
};

use super::{DRAFT_MARK, VersionMeta};
use crate::model::handover::{atmist_in, clock_in, observation_summary};
use crate::model::{AllergyStatus, Encounter, Inspired, Milestone, News2};

const REGULAR_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const BOLD_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

const PAGE_WIDTH_MM: f32 = 210.0;
const PAGE_HEIGHT_MM: f32 = 297.0;
const MARGIN_MM: f32 = 14.0;

/// Why a PDF could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdfError {
    #[error("the embedded font could not be loaded")]
    Font,
}

fn mm_to_pt(mm: f32) -> f32 {
    mm * 72.0 / 25.4
}

struct Face {
    parsed: ParsedFont,
    id: FontId,
}

impl Face {
    fn width_pt(&self, text: &str, size_pt: f32) -> f32 {
        let upm = f32::from(self.parsed.units_per_em.max(1));
        let units: f32 = text
            .chars()
            .map(|c| {
                self.parsed
                    .lookup_glyph_index(c as u32)
                    .and_then(|g| self.parsed.get_glyph_width(g))
                    .map(f32::from)
                    .unwrap_or(upm * 0.6)
            })
            .sum();
        units / upm * size_pt
    }
}

/// Lays text onto pages top to bottom.
struct Writer {
    doc: PdfDocument,
    regular: Face,
    bold: Face,
    pages: Vec<Vec<Op>>,
    /// Distance from the top of the page, in points.
    y_pt: f32,
    footer: String,
    /// Who the patient is, printed at the foot of every page: a loose page must still say
    /// whose it is.
    patient: String,
}

impl Writer {
    fn page_height_pt() -> f32 {
        mm_to_pt(PAGE_HEIGHT_MM)
    }

    fn left_pt() -> f32 {
        mm_to_pt(MARGIN_MM)
    }

    fn content_width_pt() -> f32 {
        mm_to_pt(PAGE_WIDTH_MM - 2.0 * MARGIN_MM)
    }

    fn ops(&mut self) -> &mut Vec<Op> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y_pt = mm_to_pt(MARGIN_MM);
    }

    /// Makes room for `height_pt`, starting a new page if needed (leaving room for the footer).
    fn ensure(&mut self, height_pt: f32) {
        if self.y_pt + height_pt > Self::page_height_pt() - mm_to_pt(MARGIN_MM + 9.0) {
            self.new_page();
        }
    }

    fn text_at(
        &mut self,
        x_pt: f32,
        baseline_from_top_pt: f32,
        size_pt: f32,
        bold: bool,
        text: &str,
    ) {
        let font = if bold {
            self.bold.id.clone()
        } else {
            self.regular.id.clone()
        };
        let y = Self::page_height_pt() - baseline_from_top_pt;
        let ops = self.ops();
        ops.push(Op::StartTextSection);
        ops.push(Op::SetFont {
            font: PdfFontHandle::External(font),
            size: Pt(size_pt),
        });
        ops.push(Op::SetTextCursor {
            pos: Point {
                x: Pt(x_pt),
                y: Pt(y),
            },
        });
        ops.push(Op::ShowText {
            items: vec![TextItem::Text(text.to_owned())],
        });
        ops.push(Op::EndTextSection);
    }

    /// Splits `text` into lines no wider than `width_pt`; very long words are broken.
    fn wrap(&self, text: &str, size_pt: f32, bold: bool, width_pt: f32) -> Vec<String> {
        let face = if bold { &self.bold } else { &self.regular };
        let mut lines = Vec::new();
        for paragraph in text.split('\n') {
            let mut line = String::new();
            for word in paragraph.split_whitespace() {
                let candidate = if line.is_empty() {
                    word.to_owned()
                } else {
                    format!("{line} {word}")
                };
                if face.width_pt(&candidate, size_pt) <= width_pt {
                    line = candidate;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                // A single word wider than the line: break it by characters.
                let mut piece = String::new();
                for ch in word.chars() {
                    piece.push(ch);
                    if face.width_pt(&piece, size_pt) > width_pt {
                        piece.pop();
                        lines.push(std::mem::take(&mut piece));
                        piece.push(ch);
                    }
                }
                line = piece;
            }
            lines.push(line);
        }
        lines
    }

    /// Writes wrapped text at `x_pt` within `width_pt`, advancing the cursor.
    fn paragraph(&mut self, x_pt: f32, width_pt: f32, size_pt: f32, bold: bool, text: &str) {
        let line_height = size_pt * 1.3;
        for line in self.wrap(text, size_pt, bold, width_pt) {
            self.ensure(line_height);
            self.y_pt += line_height;
            self.text_at(x_pt, self.y_pt - size_pt * 0.25, size_pt, bold, &line);
        }
    }

    fn heading(&mut self, text: &str) {
        self.ensure(26.0);
        self.y_pt += 8.0;
        self.paragraph(Self::left_pt(), Self::content_width_pt(), 11.5, true, text);
        self.rule(0.6);
        self.y_pt += 3.0;
    }

    fn rule(&mut self, thickness_pt: f32) {
        let y = Self::page_height_pt() - self.y_pt - 2.0;
        let x0 = Self::left_pt();
        let x1 = x0 + Self::content_width_pt();
        let ops = self.ops();
        ops.push(Op::SetOutlineThickness {
            pt: Pt(thickness_pt),
        });
        ops.push(Op::SetOutlineColor {
            col: Color::Greyscale(Greyscale {
                percent: 0.0,
                icc_profile: None,
            }),
        });
        ops.push(Op::DrawLine {
            line: Line {
                points: vec![
                    LinePoint {
                        p: Point {
                            x: Pt(x0),
                            y: Pt(y),
                        },
                        bezier: false,
                    },
                    LinePoint {
                        p: Point {
                            x: Pt(x1),
                            y: Pt(y),
                        },
                        bezier: false,
                    },
                ],
                is_closed: false,
            },
        });
        self.y_pt += 2.0;
    }

    /// A signature drawn on the tablet, as lines in a box `width_pt` wide (its strokes are
    /// in the pad's coordinates, 0..=SIGNATURE_SCALE across and down, 3 wide to 1 high).
    fn signature(&mut self, strokes: &[Vec<[u16; 2]>], width_pt: f32) {
        let height_pt = width_pt / 3.0;
        self.ensure(height_pt + 6.0);
        self.y_pt += 3.0;
        let top = Self::page_height_pt() - self.y_pt;
        let x0 = Self::left_pt();
        let scale = f32::from(crate::model::non_conveyance::SIGNATURE_SCALE);
        let at = |p: [u16; 2]| Point {
            x: Pt(x0 + f32::from(p[0]) / scale * width_pt),
            y: Pt(top - f32::from(p[1]) / scale * height_pt),
        };
        let ops = self.ops();
        ops.push(Op::SetOutlineThickness { pt: Pt(0.8) });
        ops.push(Op::SetOutlineColor {
            col: Color::Greyscale(Greyscale {
                percent: 0.0,
                icc_profile: None,
            }),
        });
        for stroke in strokes.iter().filter(|s| s.len() > 1) {
            ops.push(Op::DrawLine {
                line: Line {
                    points: stroke
                        .iter()
                        .map(|&p| LinePoint {
                            p: at(p),
                            bezier: false,
                        })
                        .collect(),
                    is_closed: false,
                },
            });
        }
        // The line signed above.
        let base = top - height_pt;
        ops.push(Op::SetOutlineThickness { pt: Pt(0.4) });
        ops.push(Op::DrawLine {
            line: Line {
                points: vec![
                    LinePoint {
                        p: Point {
                            x: Pt(x0),
                            y: Pt(base),
                        },
                        bezier: false,
                    },
                    LinePoint {
                        p: Point {
                            x: Pt(x0 + width_pt),
                            y: Pt(base),
                        },
                        bezier: false,
                    },
                ],
                is_closed: false,
            },
        });
        self.y_pt += height_pt + 3.0;
    }

    /// One bold line of text inside a drawn box across the page.
    fn boxed_line(&mut self, text: &str) {
        let size = 11.0;
        let lines = self.wrap(text, size, true, Self::content_width_pt() - 12.0);
        let height = lines.len() as f32 * size * 1.3 + 8.0;
        self.ensure(height + 6.0);
        self.y_pt += 4.0;
        let top = self.y_pt;
        let y = Self::page_height_pt() - top - height;
        let ops = self.ops();
        ops.push(Op::SetOutlineThickness { pt: Pt(1.2) });
        ops.push(Op::SetOutlineColor {
            col: Color::Greyscale(Greyscale {
                percent: 0.0,
                icc_profile: None,
            }),
        });
        ops.push(Op::DrawRectangle {
            rectangle: Rect {
                x: Pt(Self::left_pt()),
                y: Pt(y),
                width: Pt(Self::content_width_pt()),
                height: Pt(height),
                mode: Some(PaintMode::Stroke),
                winding_order: None,
            },
        });
        self.y_pt += 4.0;
        for line in lines {
            self.y_pt += size * 1.3;
            self.text_at(
                Self::left_pt() + 6.0,
                self.y_pt - size * 0.25,
                size,
                true,
                &line,
            );
        }
        self.y_pt = top + height + 2.0;
    }

    /// "Label: value" pairs in two columns.
    fn fields(&mut self, pairs: &[(&str, String)]) {
        let col_width = Self::content_width_pt() / 2.0;
        for chunk in pairs.chunks(2) {
            let top = self.y_pt;
            let mut bottom = top;
            for (i, (label, value)) in chunk.iter().enumerate() {
                self.y_pt = top;
                let x = Self::left_pt() + col_width * i as f32;
                let text = format!(
                    "{label}: {}",
                    if value.trim().is_empty() {
                        "not recorded"
                    } else {
                        value.trim()
                    }
                );
                self.paragraph(x, col_width - 8.0, 9.5, false, &text);
                bottom = bottom.max(self.y_pt);
            }
            self.y_pt = bottom;
        }
    }

    fn table(&mut self, headers: &[&str], widths_mm: &[f32], rows: &[Vec<String>]) {
        let size = 8.5;
        let row_height = size * 1.5;
        let draw_row = |w: &mut Writer, cells: &[String], bold: bool| {
            w.ensure(row_height);
            w.y_pt += row_height;
            let mut x = Writer::left_pt();
            for (cell, width) in cells.iter().zip(widths_mm) {
                let width_pt = mm_to_pt(*width);
                // Cells are short; shorten rather than wrap to keep one row per set.
                let face = if bold { &w.bold } else { &w.regular };
                let mut text = cell.clone();
                while face.width_pt(&text, size) > width_pt - 2.0 && text.chars().count() > 1 {
                    text.pop();
                }
                w.text_at(x, w.y_pt - 3.0, size, bold, &text);
                x += width_pt;
            }
        };
        let header_cells: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
        draw_row(self, &header_cells, true);
        self.rule(0.4);
        for row in rows {
            // A table that runs onto a new page repeats its headings there.
            let pages = self.pages.len();
            self.ensure(row_height);
            if self.pages.len() != pages {
                draw_row(self, &header_cells, true);
                self.rule(0.4);
            }
            draw_row(self, row, false);
        }
    }

    fn finish(mut self, title: &str) -> Vec<u8> {
        let count = self.pages.len().max(1);
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let footer = self.footer.clone();
        let patient = self.patient.clone();
        for index in 0..count {
            let text = format!("{footer} · page {} of {count}", index + 1);
            let font = self.regular.id.clone();
            let bold = self.bold.id.clone();
            let y = mm_to_pt(MARGIN_MM - 6.0);
            if let Some(ops) = self.pages.get_mut(index) {
                ops.push(Op::StartTextSection);
                ops.push(Op::SetFont {
                    font: PdfFontHandle::External(bold),
                    size: Pt(8.5),
                });
                ops.push(Op::SetTextCursor {
                    pos: Point {
                        x: Pt(Self::left_pt()),
                        y: Pt(mm_to_pt(MARGIN_MM - 1.5)),
                    },
                });
                ops.push(Op::ShowText {
                    items: vec![TextItem::Text(patient.clone())],
                });
                ops.push(Op::EndTextSection);
                ops.push(Op::StartTextSection);
                ops.push(Op::SetFont {
                    font: PdfFontHandle::External(font),
                    size: Pt(7.5),
                });
                ops.push(Op::SetTextCursor {
                    pos: Point {
                        x: Pt(Self::left_pt()),
                        y: Pt(y),
                    },
                });
                ops.push(Op::ShowText {
                    items: vec![TextItem::Text(text)],
                });
                ops.push(Op::EndTextSection);
            }
        }
        let mut doc = self.doc;
        doc.metadata.info.document_title = title.to_owned();
        let pages = self
            .pages
            .into_iter()
            .map(|ops| PdfPage::new(Mm(PAGE_WIDTH_MM), Mm(PAGE_HEIGHT_MM), ops))
            .collect();
        doc.with_pages(pages)
            .save(&PdfSaveOptions::default(), &mut Vec::new())
    }
}

fn load(doc: &mut PdfDocument, bytes: &[u8]) -> Result<Face, PdfError> {
    let parsed = ParsedFont::from_bytes(bytes, 0, &mut Vec::new()).ok_or(PdfError::Font)?;
    let id = doc.add_font(&parsed);
    Ok(Face { parsed, id })
}

/// Renders the handover summary of one version, times in UTC.
pub fn render(
    e: &Encounter,
    meta: &VersionMeta,
    generated_at: DateTime<Utc>,
) -> Result<Vec<u8>, PdfError> {
    render_in(e, meta, generated_at, Utc.fix())
}

/// Renders the handover summary in UK time, the zone (GMT or BST) printed with the times:
/// what the hospital's clocks say, whatever zone the device is set to.
pub fn render_uk(
    e: &Encounter,
    meta: &VersionMeta,
    generated_at: DateTime<Utc>,
) -> Result<Vec<u8>, PdfError> {
    let (offset, name) = super::uk_time_zone(e.created_at_utc);
    render_zoned(e, meta, generated_at, offset, &format!("UK time, {name}"))
}

/// Renders the handover summary with clock times at `offset` from UTC; the offset is printed.
pub fn render_in(
    e: &Encounter,
    meta: &VersionMeta,
    generated_at: DateTime<Utc>,
    offset: chrono::FixedOffset,
) -> Result<Vec<u8>, PdfError> {
    let zone = if offset.local_minus_utc() == 0 {
        "UTC".to_owned()
    } else {
        format!("UTC{offset}")
    };
    render_zoned(e, meta, generated_at, offset, &zone)
}

fn render_zoned(
    e: &Encounter,
    meta: &VersionMeta,
    generated_at: DateTime<Utc>,
    offset: chrono::FixedOffset,
    zone: &str,
) -> Result<Vec<u8>, PdfError> {
    let clock = |at: DateTime<Utc>| clock_in(at, offset);
    let mut doc = PdfDocument::new("Handover summary");
    let regular = load(&mut doc, REGULAR_TTF)?;
    let bold = load(&mut doc, BOLD_TTF)?;
    let mut w = Writer {
        doc,
        regular,
        bold,
        pages: vec![Vec::new()],
        y_pt: mm_to_pt(MARGIN_MM),
        patient: {
            let name = e.patient.display_name();
            format!(
                "{} · {}",
                if name.is_empty() {
                    "Patient name not recorded"
                } else {
                    &name
                },
                e.patient.identifiers_line(generated_at.date_naive())
            )
        },
        footer: format!(
            "Record {} · version {} · generated {} UTC",
            e.id,
            meta.revision,
            generated_at.format("%Y-%m-%d %H:%M")
        ),
    };
    let left = Writer::left_pt();
    let width = Writer::content_width_pt();

    if meta.is_draft() {
        // A black band with white text: unmistakable on a black-and-white print.
        let band_height = 22.0;
        let top = w.y_pt;
        let y = Writer::page_height_pt() - top - band_height;
        let ops = w.ops();
        ops.push(Op::SetFillColor {
            col: Color::Greyscale(Greyscale {
                percent: 0.0,
                icc_profile: None,
            }),
        });
        ops.push(Op::DrawRectangle {
            rectangle: Rect {
                x: Pt(left),
                y: Pt(y),
                width: Pt(width),
                height: Pt(band_height),
                mode: Some(PaintMode::Fill),
                winding_order: None,
            },
        });
        ops.push(Op::SetFillColor {
            col: Color::Greyscale(Greyscale {
                percent: 1.0,
                icc_profile: None,
            }),
        });
        w.text_at(
            left + 6.0,
            top + 16.0,
            13.0,
            true,
            &format!("{DRAFT_MARK} – this record may change"),
        );
        w.ops().push(Op::SetFillColor {
            col: Color::Greyscale(Greyscale {
                percent: 0.0,
                icc_profile: None,
            }),
        });
        w.y_pt += band_height + 4.0;
    }

    w.paragraph(
        left,
        width,
        16.0,
        true,
        "Ambulance patient care record – handover summary",
    );
    let name = e.patient.display_name();
    w.paragraph(
        left,
        width,
        13.0,
        true,
        if name.is_empty() {
            "Patient name not recorded"
        } else {
            &name
        },
    );

    // Allergies boxed near the top, where a receiving clinician looks first.
    w.boxed_line(
        &AllergyStatus::of_record(&e.history.allergies, &e.history.allergy_classes).headline(),
    );

    w.heading("Patient");
    let age = e
        .patient_age_years()
        .map(|a| format!("{a} years"))
        .unwrap_or_default();
    w.fields(&[
        (
            "NHS number",
            e.patient
                .nhs_number
                .as_ref()
                .map(|n| n.formatted())
                .unwrap_or_default(),
        ),
        (
            "Date of birth",
            e.patient
                .date_of_birth
                .map(|d| d.format("%d/%m/%Y").to_string())
                .unwrap_or_default(),
        ),
        ("Age", age),
        (
            "Sex",
            e.patient
                .sex
                .map(|s| s.label().to_owned())
                .unwrap_or_default(),
        ),
        ("Address", e.patient.address.clone()),
        ("GP", e.patient.gp_practice.clone()),
        ("Allergies", e.history.allergies.clone()),
        ("Medications", e.history.medications.clone()),
    ]);
    if let Some(p) = e.patient.pregnancy {
        w.fields(&[("Pregnancy", p.label())]);
    }

    w.heading(&format!("Incident and times ({zone})"));
    let mut pairs: Vec<(&str, String)> = vec![
        ("Incident", e.incident.incident_number.clone()),
        ("Call sign", e.incident.call_sign.clone()),
    ];
    for m in Milestone::ALL {
        if let Some(t) = e.incident.times.get(m) {
            pairs.push((
                m.label(),
                t.with_timezone(&offset).format("%d/%m %H:%M").to_string(),
            ));
        }
    }
    w.fields(&pairs);

    w.heading("Handover (ATMIST)");
    for line in atmist_in(e, offset) {
        let text = format!("{} – {}: {}", line.letter, line.heading, line.text);
        w.paragraph(left, width, 10.0, false, &text);
    }

    if let Some(summary) = e.history.safeguarding.summary() {
        w.heading("Safeguarding");
        w.paragraph(left, width, 9.5, false, &summary);
        let details = e.history.safeguarding.details.trim();
        if !details.is_empty() {
            w.paragraph(left, width, 9.5, false, details);
        }
    }
    if let Some(presentations) = e.assessment.presentations_text() {
        w.heading("Presentation");
        w.paragraph(left, width, 9.5, false, &presentations);
    }
    // With the day: a patient last known well before midnight is not read as this evening.
    let day_clock = |at: DateTime<Utc>| at.with_timezone(&offset).format("%d/%m %H:%M").to_string();
    if let Some(arrest) = e.assessment.arrest() {
        w.heading("Cardiac arrest");
        w.paragraph(left, width, 9.5, false, &arrest.summary(day_clock));
        for (_, line) in arrest.shock_lines(day_clock) {
            w.paragraph(left, width, 9.5, false, &line);
        }
        for warning in arrest.time_warnings() {
            w.paragraph(left, width, 9.5, true, &format!("Times: {warning}"));
        }
    }
    if let Some(trauma) = e.assessment.trauma() {
        w.heading("Trauma");
        if let Some(m) = trauma.mechanism_text() {
            w.paragraph(left, width, 9.5, false, &format!("Mechanism: {m}"));
        }
        let injuries = trauma.injuries_text(day_clock);
        if !injuries.is_empty() {
            w.paragraph(left, width, 9.5, false, &injuries);
        }
    }
    if let Some(p) = e.assessment.paediatric() {
        w.heading("Paediatric");
        let weight = p.weight_text().unwrap_or_else(|| "not recorded".to_owned());
        w.paragraph(left, width, 9.5, false, &format!("Weight: {weight}"));
    }
    if let Some(m) = e.assessment.maternity() {
        w.heading("Maternity");
        w.paragraph(left, width, 9.5, false, &m.summary());
    }
    if let Some(sepsis) = e.assessment.sepsis() {
        w.heading("Sepsis screen");
        w.paragraph(left, width, 9.5, false, &sepsis.summary(e, day_clock));
    }
    if let Some(breathing) = e.assessment.breathing() {
        w.heading("Breathing difficulty");
        w.paragraph(left, width, 9.5, false, &breathing.summary());
    }
    if let Some(m) = e.assessment.mental_health() {
        w.heading("Mental health");
        w.paragraph(left, width, 9.5, false, &m.summary());
    }
    if let Some(fall) = e.assessment.fall() {
        w.heading("Fall and frailty");
        w.paragraph(left, width, 9.5, false, &fall.summary());
    }
    if let Some(stroke) = e.assessment.stroke() {
        w.heading("Stroke / TIA");
        for line in stroke.summary_lines(day_clock) {
            w.paragraph(left, width, 9.5, false, &line);
        }
    }
    if !e.assessment.ecgs.is_empty() || !e.assessment.ecg_not_done_reason.trim().is_empty() {
        w.heading("12-lead ECG");
        for ecg in &e.assessment.ecgs {
            w.paragraph(left, width, 9.5, false, &ecg.summary(day_clock));
        }
        if e.assessment.ecgs.is_empty() {
            let text = format!("Not taken: {}", e.assessment.ecg_not_done_reason.trim());
            w.paragraph(left, width, 9.5, false, &text);
        }
    }

    w.heading("Observations");
    let headers = [
        "Time", "RR", "SpO2", "Air/O2", "BP", "HR", "Temp", "ACVPU", "GCS", "BM", "Pain", "NEWS2",
    ];
    let widths = [
        14.0, 10.0, 12.0, 18.0, 18.0, 11.0, 13.0, 14.0, 12.0, 11.0, 11.0, 38.0,
    ];
    let mut rows = Vec::new();
    for o in e.observations_by_time() {
        let news = e.news2_for(o);
        rows.push(vec![
            clock(o.taken_at_utc),
            o.resp_rate_per_min
                .map(|v| v.get().to_string())
                .unwrap_or_else(|| "–".into()),
            o.spo2_percent
                .map(|v| format!("{}%", v.get()))
                .unwrap_or_else(|| "–".into()),
            match o.inspired {
                Some(Inspired::Air) => "air".into(),
                Some(Inspired::Oxygen {
                    flow_l_per_min: Some(f),
                }) => format!("O2 {} L", f.get()),
                Some(Inspired::Oxygen {
                    flow_l_per_min: None,
                }) => "O2".into(),
                None => "–".into(),
            },
            match (o.systolic_mmhg, o.diastolic_mmhg) {
                (Some(s), Some(d)) => format!("{}/{}", s.get(), d.get()),
                (Some(s), None) => s.get().to_string(),
                _ => "–".into(),
            },
            o.pulse_bpm
                .map(|v| v.get().to_string())
                .unwrap_or_else(|| "–".into()),
            o.temperature_celsius
                .map(|v| format!("{:.1}", v.get()))
                .unwrap_or_else(|| "–".into()),
            o.acvpu
                .map(|v| v.letter().to_owned())
                .unwrap_or_else(|| "–".into()),
            o.gcs
                .map(|g| g.total().map_or_else(|| g.components(), |t| t.to_string()))
                .unwrap_or_else(|| "–".into()),
            o.glucose_mmol_per_l
                .map(|v| format!("{:.1}", v.get()))
                .unwrap_or_else(|| "–".into()),
            o.pain_score
                .map(|v| v.get().to_string())
                .unwrap_or_else(|| "–".into()),
            match news {
                News2::Complete(s) => format!("{} ({})", s.total, s.risk_and_scale()),
                News2::Incomplete { present } => format!("incomplete {present}/7"),
                News2::NotApplicable => "not used under 16".into(),
            },
        ]);
    }
    if rows.is_empty() {
        w.paragraph(left, width, 9.5, false, "No observations recorded.");
    } else {
        w.table(&headers, &widths, &rows);
        // The same sets in words, so nothing is lost to column truncation.
        w.y_pt += 4.0;
        for o in e.observations_by_time() {
            let text = format!("{}: {}", clock(o.taken_at_utc), observation_summary(o));
            w.paragraph(left, width, 8.0, false, &text);
        }
    }

    w.heading("Drugs and interventions");
    let mut any = false;
    for d in &e.drugs {
        any = true;
        let mut text = format!(
            "{} {} – by {}",
            clock(d.at_utc),
            d.summary(),
            if d.by.is_empty() {
                "not recorded"
            } else {
                &d.by
            }
        );
        if !d.form.is_empty() {
            text.push_str(&format!("; {}", d.form));
        }
        if let Some(c) = &d.controlled {
            text.push_str(&format!(
                "; controlled drug witnessed by {}, batch {}, wasted {}",
                c.witness_name,
                c.batch,
                d.unit.amount(c.wasted)
            ));
        }
        w.paragraph(left, width, 9.5, false, &text);
        for o in &d.overrides {
            let mut line = format!("Given despite a check: {}", o.said);
            if !o.reason.is_empty() {
                line.push_str(&format!(". Reason: {}", o.reason));
            }
            w.paragraph(left, width, 9.0, false, &line);
        }
    }
    for i in &e.interventions {
        any = true;
        let mut text = format!("{} {}", clock(i.at_utc), i.what);
        if !i.details.trim().is_empty() {
            text.push_str(&format!(" ({})", i.details.trim()));
        }
        w.paragraph(left, width, 9.5, false, &text);
    }
    if !any {
        w.paragraph(left, width, 9.5, false, "None recorded.");
    }

    w.heading("Outcome");
    let outcome = e
        .outcome
        .as_ref()
        .map(|o| o.summary())
        .unwrap_or_else(|| "Not recorded".into());
    w.paragraph(left, width, 9.5, false, &outcome);
    if let Some(section) = e
        .non_conveyance
        .as_ref()
        .filter(|_| e.outcome.as_ref().is_some_and(|o| o.is_non_conveyance()))
    {
        w.heading("Non-conveyance");
        let when = |at: DateTime<Utc>| {
            format!(
                "{} {zone}",
                at.with_timezone(&offset).format("%d/%m/%Y %H:%M")
            )
        };
        let mut lines = section.summary_lines(when);
        // The last line says who signed (or why no one did): it stays on the page with the
        // signature drawn under it.
        let signed_line = lines.pop();
        for line in &lines {
            w.paragraph(left, width, 9.5, false, line);
        }
        let signature_width_pt = mm_to_pt(75.0);
        if section.signature.is_drawn() {
            w.ensure(9.5 * 1.3 + signature_width_pt / 3.0 + 12.0);
        }
        if let Some(line) = signed_line {
            w.paragraph(left, width, 9.5, false, &line);
        }
        if section.signature.is_drawn() {
            w.signature(&section.signature.strokes, signature_width_pt);
            w.y_pt += 4.0;
        }
    }
    if !e.notes.trim().is_empty() {
        w.paragraph(
            left,
            width,
            9.5,
            false,
            &format!("Notes: {}", e.notes.trim()),
        );
    }

    w.heading("Signature");
    match (&e.sign_off, meta.is_draft()) {
        (Some(s), false) => {
            w.fields(&[
                ("Signed by", s.clinician_name.clone()),
                ("Registration", s.registration.clone()),
                (
                    "Signed at",
                    format!(
                        "{} {zone}",
                        s.signed_at_utc
                            .with_timezone(&offset)
                            .format("%d/%m/%Y %H:%M")
                    ),
                ),
                ("Status", meta.status.as_str().to_owned()),
            ]);
            let sig = meta.signature.clone().unwrap_or_default();
            w.paragraph(
                left,
                width,
                7.5,
                false,
                &format!("Content SHA-256: {}", meta.content_sha256),
            );
            w.paragraph(
                left,
                width,
                7.5,
                false,
                &format!("Device signature (Ed25519): {sig}"),
            );
        }
        _ => w.paragraph(
            left,
            width,
            10.0,
            true,
            &format!("{DRAFT_MARK}. This record has not been signed by a clinician."),
        ),
    }
    let title = format!("Handover summary {}", e.incident.incident_number);
    Ok(w.finish(&title))
}
