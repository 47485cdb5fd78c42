with

source as (

    select * from {{ source('opendental', 'procedurelog') }}
    where _deleted_at is null

),

renamed as (

    select

        ----------  ids
        procnum as procedure_id,
        patnum as patient_id,
        {{ clean_fk('aptnum') }} as appointment_id,
        {{ clean_fk('plannedaptnum') }} as planned_appointment_id,
        {{ clean_fk('provnum') }} as provider_id,
        {{ clean_fk('codenum') }} as procedure_code_id,
        {{ clean_fk('clinicnum') }} as clinic_id,

        ----------  text
        nullif(toothnum, '') as tooth_number,
        nullif(surf, '') as surface,

        ----------  enums
        procstatus as procedure_status_code,
        {{ decode('procstatus', {1: 'TreatmentPlanned', 2: 'Complete', 3: 'ExistingCurrent',
                                  4: 'ExistingOther', 5: 'Referred', 6: 'Deleted', 7: 'Condition',
                                  8: 'TreatmentPlannedInactive'}) }} as procedure_status,

        ----------  numerics
        {{ to_money('procfee') }} as procedure_fee,
        unitqty as unit_quantity,
        baseunits as base_units,
        -- OpenDental's production: fee x (units + base units)
        {{ to_money('procfee * (unitqty + baseunits)') }} as production_amount,
        {{ to_money('discount') }} as discount_amount,

        ----------  booleans
        procstatus = 6 as is_deleted,
        procstatus = 2 as is_complete,

        ----------  dates
        {{ clean_date('procdate') }} as procedure_date,
        {{ clean_date('datecomplete') }} as completed_date,
        {{ clean_date('datetp') }} as treatment_planned_date,

        ----------  timestamps
        {{ clean_date('secdateentry') }} as created_at,
        datetstamp as updated_at,
        _loaded_at

    from source

)

select * from renamed
