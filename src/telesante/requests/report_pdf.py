"""The compte rendu as a PDF (fpdf2, DejaVu Sans embedded so that every French character prints): what the
CSP R.6316-4 asks for — patient identity, participants, date and time, the act, conclusion, prescriptions,
technical incidents — and the signature (signer, time, SHA-256 of the signed content)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF

from telesante.kit import clock
from telesante.offers.forms import FormDefinition, display_answers
from telesante.offers.models import ACT_TYPE_LABELS, Offer
from telesante.patients.models import SEX_LABELS, IdentityStatus, Patient
from telesante.requests.models import RequestReport, TeleRequest

FONTS = Path(__file__).resolve().parent.parent / "kit" / "data" / "fonts"


@dataclass(frozen=True)
class ReportDocument:
    request: TeleRequest
    report: RequestReport
    patient: Patient
    offer: Offer
    form: FormDefinition
    requester_organisation: str
    expert_organisation: str


class _Pdf(FPDF):
    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("dejavu", size=7)
        self.set_text_color(90, 90, 90)
        self.cell(0, 5, f"Télésanté — compte rendu signé — page {self.page_no()}/{{nb}}", align="C")


def render_report_pdf(doc: ReportDocument) -> bytes:
    pdf = _Pdf(format="A4")
    pdf.set_title(f"Compte rendu — {doc.offer.title}")
    pdf.set_author(doc.report.signed_by_name)
    pdf.set_creator("Télésanté")
    pdf.add_font("dejavu", "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font("dejavu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_margins(18, 16, 18)
    pdf.set_auto_page_break(True, margin=18)
    pdf.alias_nb_pages()
    pdf.add_page()

    def heading(text: str) -> None:
        pdf.ln(3)
        pdf.set_font("dejavu", "B", 11)
        pdf.cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
        pdf.set_draw_color(180, 180, 180)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
        pdf.ln(1)

    def line(label: str, value: str) -> None:
        pdf.set_font("dejavu", "B", 9)
        pdf.cell(55, 5.5, label)
        pdf.set_font("dejavu", "", 9)
        pdf.multi_cell(0, 5.5, value or "—", new_x="LMARGIN", new_y="NEXT")

    def paragraph(text: str) -> None:
        pdf.set_font("dejavu", "", 9.5)
        pdf.multi_cell(0, 5.5, text or "—", new_x="LMARGIN", new_y="NEXT")

    r, report, patient = doc.request, doc.report, doc.patient
    pdf.set_font("dejavu", "B", 15)
    pdf.cell(0, 9, f"Compte rendu de {ACT_TYPE_LABELS[r.act_type].lower()}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("dejavu", "", 10)
    pdf.cell(0, 6, doc.offer.title, new_x="LMARGIN", new_y="NEXT")

    heading("Patient")
    line(
        "Nom de naissance",
        patient.birth_family_name
        + (f" (nom utilisé : {patient.used_family_name})" if patient.used_family_name else ""),
    )
    line("Prénoms", patient.birth_given_names)
    line("Date de naissance", patient.birth_date.strftime("%d/%m/%Y"))
    line("Sexe", SEX_LABELS[patient.sex])
    if patient.ins_matricule and patient.identity_status == IdentityStatus.QUALIFIEE:
        line("Matricule INS", f"{patient.ins_matricule} (OID {patient.ins_oid})")

    heading("Acte")
    line("Type", ACT_TYPE_LABELS[r.act_type])
    line("Demandé par", f"{r.requester_name} — {doc.requester_organisation}")
    line("Expert", f"{r.assigned_name} — {doc.expert_organisation}")
    line("Demande envoyée le", clock.format_paris(r.sent_at))
    line("Réponse donnée le", clock.format_paris(r.answered_at))
    line("Acte réalisé le", clock.format_paris(report.performed_at))
    if report.duration_minutes is not None:
        line("Durée", f"{report.duration_minutes} min")
    line(
        "Consentement",
        "recueilli avant l'acte" if r.consent_id else f"dérogation d'urgence : {r.emergency_exemption}",
    )
    participants = ", ".join(f"{p['name']} ({p['role']})" for p in report.participants)
    line("Participants", participants)

    heading("Éléments transmis")
    for label, text in display_answers(doc.form.fields, r.answers):
        line(label, text)

    decision = {k: v for k, v in r.expert_answers.items() if k != "conclusion"}
    if decision:
        heading("Décision de l'expert")
        for label, text in display_answers(doc.form.answer, decision):
            line(label, text)

    heading("Conclusion")
    paragraph(report.conclusion)
    heading("Prescriptions et actes")
    paragraph(report.prescriptions)
    heading("Incidents techniques")
    paragraph(f"Oui — {report.technical_incident_details}" if report.technical_incident else "Aucun")

    heading("Signature")
    line("Signé par", report.signed_by_name)
    line("Le", clock.format_paris(report.signed_at, with_seconds=True))
    line("Empreinte SHA-256", report.content_hash)
    return bytes(pdf.output())
