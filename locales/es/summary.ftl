### The readable summary in the download zip (summary.html).
### Spanish (es-US): medical-portal register, addressed as "usted".

summary-title = Resumen del expediente médico — { $name }
summary-heading = Resumen del expediente médico: { $name }
summary-produced = Generado el { $when } por el portal de acceso para pacientes de Harbor Health. Expediente { $id }.
summary-incomplete = Incompleto:
summary-about-patient = Datos del paciente
summary-col-from = Proviene de
summary-no-patient-details = No se incluyen datos del paciente.
summary-footer-files = Este resumen muestra los elementos principales del expediente. Los archivos que lo acompañan en esta descarga (un archivo .ndjson por cada tipo de elemento, en formato FHIR R4) contienen el mismo expediente completo, para aplicaciones y otros proveedores de atención médica. “Proviene de” indica el sistema del hospital del que salió cada elemento.
summary-footer-private = Este archivo es una copia de información médica: manténgalo en privado. No es para emergencias: llame al 911.
summary-section-problems = Problemas de salud
summary-col-problem = Problema
summary-col-status = Estado
summary-col-since = Desde
summary-empty-problems = No hay problemas de salud en la lista.
summary-section-medications = Medicamentos
summary-col-medication = Medicamento
summary-col-instructions = Instrucciones
summary-col-prescribed = Recetado
summary-empty-medications = No hay medicamentos en la lista.
summary-section-allergies = Alergias
summary-col-allergy = Alergia
summary-col-reaction = Reacción
summary-col-criticality = Gravedad
summary-empty-allergies = No hay alergias en la lista.
summary-section-immunizations = Vacunas
summary-col-vaccine = Vacuna
summary-col-date = Fecha
summary-empty-immunizations = No hay vacunas en la lista.
summary-section-results = Resultados de pruebas y mediciones
summary-col-test = Prueba
summary-col-result = Resultado
summary-col-unit = Unidad
summary-col-reference-range = Intervalo de referencia
summary-col-flag = Indicador
summary-empty-results = No hay resultados en la lista.
summary-section-reports = Informes
summary-col-report = Informe
summary-col-conclusion = Conclusión
summary-empty-reports = No hay informes en la lista.
summary-section-visits = Consultas
summary-col-visit = Consulta
summary-col-reason = Motivo
summary-empty-visits = No hay consultas en la lista.
summary-section-procedures = Procedimientos
summary-col-procedure = Procedimiento
summary-empty-procedures = No hay procedimientos en la lista.
summary-section-plans = Planes de atención y metas
summary-col-plan-or-goal = Plan o meta
summary-empty-plans = No hay planes de atención ni metas en la lista.
summary-section-care-team = Equipo de atención
summary-col-team = Equipo
summary-col-members = Integrantes
summary-empty-care-team = No hay equipo de atención en la lista.
summary-section-documents = Documentos
summary-col-document = Documento
summary-col-description = Descripción
summary-empty-documents = No hay documentos en la lista.
summary-fact-name = Nombre
summary-fact-date-of-birth = Fecha de nacimiento
summary-fact-sex = Sexo
summary-fact-date-of-death = Fecha de fallecimiento
summary-fact-record-numbers = Números de expediente
summary-fact-address = Dirección
summary-fact-phone-and-email = Teléfono y correo electrónico
summary-this-patient = este paciente
summary-missing = Es posible que falten resultados de { $source }: ese sistema no respondió.

## README.txt of the zip (plain text; file and type names stay as they are)

readme-title = Descarga del expediente médico
readme-record = Expediente: { $id }
readme-produced = Preparado: { $when }
readme-contents = Qué contiene este archivo
readme-summary-file = un resumen del expediente para leer e imprimir (ábralo en cualquier navegador web)
readme-notice-file = lo que debe saber sobre la información que no se muestra aquí
readme-type-file = { $count ->
        [one] { $count } recurso
       *[other] { $count } recursos
    } { $type } de FHIR R4, un objeto JSON por línea
readme-documents = { $count ->
        [one] { $count } documento
       *[other] { $count } documentos
    } (PDF, C-CDA …) tal como los guardan los sistemas del hospital
readme-ndjson =
    Los archivos .ndjson son el expediente tal como el portal lo entrega a las aplicaciones
    (FHIR R4, JSON delimitado por saltos de línea). Cada elemento indica de qué sistema del
    hospital proviene en meta.source y en una meta.tag del sistema
    http://portico.example/fhir/CodeSystem/source-system.
readme-left-out = Documentos que no están en este archivo
readme-left-out-one = { $id }: { $reason }; ábralo desde su expediente
readme-document-gone = el sistema que lo guarda ya no lo tiene
readme-document-no-answer = el sistema que lo guarda no respondió
readme-document-too-large = es demasiado grande para esta descarga
readme-incomplete = Incompleto
readme-about = Acerca de este expediente
readme-private = Esta es una copia de información de salud: manténgala en privado.
readme-nothing-withheld = No se retuvo nada de este expediente en esta descarga.
